"""Fixtures for the authentication tests: the real sandbox OAuth2 provider on live_server,
services wired to it, a consent helper, and loopback token endpoints.

The app calls its own provider over HTTP: TRAYSVC_PUBLIC_URL is set to live_server's URL and
only that origin (for /sandbox/ URLs) is exempt from the SSRF guard, exactly as in `make run`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

SANDBOX_SCOPES = ["read", "profile"]


def _require_sandbox() -> None:
    from django.conf import settings

    if not settings.TRAYSVC_SANDBOX:
        pytest.skip("needs TRAYSVC_SANDBOX=1 (the sandbox OAuth2 provider)")


@pytest.fixture
def provider(live_server, settings):  # type: ignore[no-untyped-def]
    """The sandbox provider's clients on live_server; the app's public URL is live_server."""
    _require_sandbox()
    from sandbox.clients import ensure_sandbox_apps

    settings.TRAYSVC_PUBLIC_URL = live_server.url
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_ISS_ENDPOINT": f"{live_server.url}/sandbox/o",
    }
    return ensure_sandbox_apps()


def make_oauth_service(org: Any, workspace: Any, *, name: str, base_url: str,
                       auth_params: dict[str, Any], client_secret: str | None,
                       test_path: str = "/me") -> Any:  # fmt: skip
    from services.models import Service

    service = Service(
        organization=org,
        owner_workspace=workspace,
        name=name,
        slug=name.lower().replace(" ", "-"),
        base_url=base_url,
        auth_method="oauth2",
        auth_params=auth_params,
        test_request={"method": "GET", "path": test_path},
    )
    service.set_secret_params({"client_secret": client_secret} if client_secret else {})
    service.save()
    return service


@pytest.fixture
def sandbox_service(actors, provider):  # type: ignore[no-untyped-def]
    """An authorization-code + PKCE service on the sandbox provider, owned by org A's owner."""
    return make_oauth_service(
        actors.org_a,
        actors.owner_m.personal_workspace,
        name="Sandbox",
        base_url=provider.api_base,
        auth_params={
            "client_id": provider.client_id,
            "authorize_url": provider.authorize_url,
            "token_url": provider.token_url,
            "revoke_url": provider.revoke_url,
            "scopes": SANDBOX_SCOPES,
            "pkce": True,
            "token_endpoint_auth": "basic",
        },
        client_secret=provider.client_secret,
    )


@pytest.fixture
def cc_service(actors, provider):  # type: ignore[no-untyped-def]
    """A client-credentials service on the sandbox provider."""
    return make_oauth_service(
        actors.org_a,
        actors.owner_m.personal_workspace,
        name="Sandbox CC",
        base_url=provider.api_base,
        auth_params={
            "client_id": provider.cc_client_id,
            "token_url": provider.token_url,
            "grant_type": "client_credentials",
            "scopes": ["read"],
            "pkce": False,
        },
        client_secret=provider.cc_client_secret,
        test_path="/items",
    )


@dataclass
class Callback:
    """What the provider redirected the browser to: the query of /oauth2/callback."""

    url: str
    params: dict[str, str]


def consent(authorize_url: str) -> Callback:
    """Log in at the provider as the sandbox user, approve, and return the callback."""
    from django.test import Client

    from sandbox.clients import ensure_sandbox_user

    user, _ = ensure_sandbox_user()
    browser = Client()
    browser.force_login(user)
    parts = urlsplit(authorize_url)
    page = browser.get(f"{parts.path}?{parts.query}")
    assert page.status_code == 200, page.content[:500]
    form = page.context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None}
    data["allow"] = "Authorize"
    answer = browser.post(parts.path, data)
    assert answer.status_code == 302, answer.content[:500]
    location = answer["Location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return Callback(location, query)


@pytest.fixture
def connect(actors, sandbox_service):  # type: ignore[no-untyped-def]
    """connect(name=...) -> an active Authentication made through the full consent flow."""
    from services.oauth import oauth_flow_finish, oauth_flow_start

    def run(name: str = "My sandbox", authentication: Any = None) -> Any:
        url, state = oauth_flow_start(
            membership=actors.owner_m,
            workspace=actors.owner_m.personal_workspace,
            service=sandbox_service,
            name=name,
            authentication=authentication,
        )
        callback = consent(url)
        return oauth_flow_finish(
            user=actors.owner,
            state=callback.params["state"],
            code=callback.params.get("code"),
            iss=callback.params.get("iss"),
        )

    return run


@pytest.fixture
def loopback(settings):  # type: ignore[no-untyped-def]
    """Let egress reach pytest-httpserver on 127.0.0.1 (the SSRF guard refuses it otherwise)."""
    settings.HTTPCLIENT_ALLOW_NETWORKS = ["127.0.0.0/8"]
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from traysvc.egress import close_clients

    yield
    close_clients()


def token_body(access: str = "at-1", refresh: str | None = "rt-1", expires_in: Any = 3600,
               **extra: Any) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", **extra}
    if expires_in is not None:
        body["expires_in"] = expires_in
    if refresh is not None:
        body["refresh_token"] = refresh
    return body


@pytest.fixture
def local_service(actors, httpserver, loopback):  # type: ignore[no-untyped-def]
    """An authorization-code service whose token endpoint is pytest-httpserver."""
    return make_oauth_service(
        actors.org_a,
        actors.owner_m.personal_workspace,
        name="Local",
        base_url=httpserver.url_for("/api"),
        auth_params={
            "client_id": "local-client",
            "authorize_url": httpserver.url_for("/authorize"),
            "token_url": httpserver.url_for("/token"),
            "scopes": ["read"],
            "pkce": True,
        },
        client_secret="local-secret",
    )


@pytest.fixture
def local_grant(actors, local_service):  # type: ignore[no-untyped-def]
    """grant(**fields) -> an active OAuth2 Authentication of local_service with stored tokens."""
    from datetime import timedelta

    from django.utils import timezone

    from services.models import Authentication, AuthStatus

    counter = {"n": 0}

    def make(*, access: str = "old-at", refresh: str | None = "old-rt",
             expires_in: int = 60, **fields: Any) -> Any:  # fmt: skip
        counter["n"] += 1
        now = timezone.now()
        authentication = Authentication(
            organization=actors.org_a,
            workspace=actors.owner_m.personal_workspace,
            service=local_service,
            name=f"Local grant {counter['n']}",
            **{
                "status": AuthStatus.ACTIVE,
                "expires_at": now + timedelta(seconds=expires_in),
                "grant_started_at": now - timedelta(hours=3),
                "created_by": actors.owner,
                **fields,
            },
        )
        secrets = {"access_token": access}
        if refresh:
            secrets["refresh_token"] = refresh
        authentication.set_secrets(secrets)
        authentication.save()
        return authentication

    return make


def in_thread(fn, results: dict, key: str):  # type: ignore[no-untyped-def]
    """Run fn in a thread with its own DB connection; its result (or exception) and its
    duration land in results[key] and results[key + "_seconds"]."""
    import threading
    import time

    from django.db import connection

    def run() -> None:
        started = time.monotonic()
        try:
            results[key] = fn()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            results[key] = exc
        finally:
            results[f"{key}_seconds"] = time.monotonic() - started
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def race_call_and_sweep(httpserver, grant, *, join_seconds: float):  # type: ignore[no-untyped-def]
    """A call's 401-refresh holds a slow token request while the sweep refreshes the same
    grant. Returns (calls, results): how many token requests the provider saw, and each side's
    outcome (results["call"], results["sweep"], results["sweep_seconds"])."""
    import json
    import threading
    import time

    from werkzeug import Response

    from services import refresh

    entered = threading.Event()
    calls = {"n": 0}

    def slow(request):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        entered.set()
        time.sleep(1.0)
        body = token_body(access=f"at-{calls['n']}", refresh=f"rt-{calls['n']}")
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/token").respond_with_handler(slow)
    results: dict[str, Any] = {}
    call_401 = in_thread(
        lambda: refresh.authentication_refresh(
            authentication_id=grant.pk, reason=refresh.REASON_CALL, expected_token="old-at"
        ),
        results,
        "call",
    )
    assert entered.wait(5)
    sweep = in_thread(
        lambda: refresh.authentication_refresh(
            authentication_id=grant.pk, reason=refresh.REASON_SWEEP
        ),
        results,
        "sweep",
    )
    call_401.join(join_seconds)
    sweep.join(join_seconds)
    return calls, results
