"""Loopback upstreams (httpbin on a werkzeug thread, pytest-httpserver) and service builders."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

SECRET_TOKEN = "tok_s3cr3t_VALUE_9f8e7d"
SECRET_PASSWORD = "pa55-w0rd_SECRET"


@pytest.fixture
def loopback(settings: Any) -> Iterator[None]:
    """Let the runner reach 127.0.0.0/8 (the SSRF guard refuses it by default)."""
    settings.HTTPCLIENT_ALLOW_NETWORKS = ["127.0.0.0/8"]
    yield


@pytest.fixture(scope="session")
def httpbin_url() -> Iterator[str]:
    """httpbin served by a threaded werkzeug server on an ephemeral loopback port."""
    import httpbin
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Handler(WSGIRequestHandler):
        # Set here, werkzeug leaves WSGIRequestHandler alone; otherwise a threaded server sets
        # HTTP/1.1 on the shared class, and every later pytest-httpserver answers HTTP/1.1 too.
        protocol_version = "HTTP/1.1"

    server = make_server("127.0.0.1", 0, httpbin.app, threaded=True, request_handler=Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def make_service(membership: Any, *, base_url: str, auth_method: str = "token", **kwargs: Any):  # type: ignore[no-untyped-def]
    """A service in the member's personal workspace, through the real service_create."""
    from services.services import service_create

    kwargs.setdefault("name", f"Service {auth_method} {base_url[-12:]}")
    if auth_method == "token":
        kwargs.setdefault("auth_params", {"placement": "bearer"})
    return service_create(
        membership=membership, base_url=base_url, auth_method=auth_method, **kwargs
    )


def make_auth(membership: Any, service: Any, values: dict[str, str], **kwargs: Any):  # type: ignore[no-untyped-def]
    """An authentication in the member's personal workspace (authentication_create)."""
    from services.authentications import authentication_create

    return authentication_create(
        membership=membership,
        workspace=kwargs.pop("workspace", None) or membership.personal_workspace,
        service=service,
        name=kwargs.pop("name", "Auth"),
        values=values,
    )


def make_oauth2_auth(membership: Any, service: Any, *, access: str, refresh: str = ""):  # type: ignore[no-untyped-def]
    """OAuth2 authentications come from a grant; here the grant's result is stored directly."""
    from services.models import Authentication

    auth = Authentication(
        organization=membership.organization,
        workspace=membership.personal_workspace,
        service=service,
        name="Grant",
        created_by=membership.user,
    )
    secrets = {"access_token": access}
    if refresh:
        secrets["refresh_token"] = refresh
    auth.set_secrets(secrets)
    auth.save()
    return auth
