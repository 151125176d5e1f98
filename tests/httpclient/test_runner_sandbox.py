"""With the sandbox on, the runner may reach the app's own origin only under /sandbox/, on the
first request and on every redirect hop; and a 307/308 never carries a body to another origin.

The app itself is played by pytest-httpserver: TRAYSVC_PUBLIC_URL points at it, and the SSRF
guard refuses loopback (HTTPCLIENT_ALLOW_NETWORKS empty), as in production."""

from __future__ import annotations

from typing import Any

import pytest

from httpclient.runner import Call, execute
from tests.httpclient.conftest import SECRET_PASSWORD, SECRET_TOKEN, make_auth, make_service
from tests.httpclient.test_runner_requests import assert_no_secret

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(actors, httpserver, settings):  # type: ignore[no-untyped-def]
    settings.HTTPCLIENT_ALLOW_NETWORKS = []
    settings.TRAYSVC_SANDBOX = True
    base = httpserver.url_for("/").rstrip("/")
    settings.TRAYSVC_PUBLIC_URL = base
    for path in ("/admin/", "/api/v1/calls", "/healthz"):
        httpserver.expect_request(path).respond_with_data(f"the app's {path}")
    httpserver.expect_request("/sandbox/api/me").respond_with_json({"me": 1})
    return base


def _call(actors, service, auth, **kw: Any):  # type: ignore[no-untyped-def]
    return execute(Call(membership=actors.member_m, service=service.public_id,
                        authentication=auth.public_id, **kw))  # fmt: skip


def _reached(httpserver) -> list[str]:  # type: ignore[no-untyped-def]
    return [request.path for request, _ in httpserver.log]


@pytest.fixture
def sandbox_service(actors, app):  # type: ignore[no-untyped-def]
    service = make_service(actors.member_m, base_url=f"{app}/sandbox/api", name="Sandbox")
    return service, make_auth(actors.member_m, service, {"token": SECRET_TOKEN})


def test_sandbox_api_is_reachable(actors, sandbox_service, httpserver) -> None:  # type: ignore[no-untyped-def]
    service, auth = sandbox_service
    result = _call(actors, service, auth, path="/me")
    assert (result.status, result.body) == (200, {"me": 1}), result.error
    assert _reached(httpserver) == ["/sandbox/api/me"]


@pytest.mark.parametrize(
    "path",
    ["{app}/admin/", "{app}/api/v1/calls", "/../../healthz", "/%2e%2e/%2e%2e/admin/"],
    ids=["absolute-admin", "absolute-api", "dot-segments", "encoded-dot-segments"],
)
def test_the_rest_of_the_app_is_refused(actors, app, sandbox_service, httpserver, path) -> None:  # type: ignore[no-untyped-def]
    service, auth = sandbox_service
    result = _call(actors, service, auth, path=path.format(app=app))
    assert result.error_kind == "refused" and result.http_status == 422, (result.error, path)
    assert "loopback" in result.error
    assert _reached(httpserver) == []


def test_a_service_on_the_app_root_reaches_only_the_sandbox(actors, app, httpserver) -> None:  # type: ignore[no-untyped-def]
    service = make_service(actors.member_m, base_url=app, name="App root")
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    assert _call(actors, service, auth, path="/sandbox/api/me").status == 200
    for path in ("/admin/", "/healthz", "/api/v1/calls"):
        assert _call(actors, service, auth, path=path).error_kind == "refused", path
    assert _reached(httpserver) == ["/sandbox/api/me"]


def test_a_redirect_out_of_the_sandbox_is_refused(actors, sandbox_service, httpserver) -> None:  # type: ignore[no-untyped-def]
    service, auth = sandbox_service
    httpserver.expect_request("/sandbox/api/go").respond_with_data(
        "", 302, {"Location": "/api/v1/calls"}
    )
    result = _call(actors, service, auth, path="/go")
    assert result.error_kind == "refused" and result.http_status == 422, result.error
    assert _reached(httpserver) == ["/sandbox/api/go"]


def test_sandbox_off_refuses_even_the_sandbox(
    actors, sandbox_service, settings, httpserver
) -> None:  # type: ignore[no-untyped-def]
    settings.TRAYSVC_SANDBOX = False
    service, auth = sandbox_service
    assert _call(actors, service, auth, path="/me").error_kind == "refused"
    assert _reached(httpserver) == []


# ---- 307/308 to another origin with a body ---------------------------------------------------


@pytest.mark.parametrize("status", [307, 308])
def test_a_body_is_not_resent_to_another_origin(actors, loopback, httpserver, status) -> None:  # type: ignore[no-untyped-def]
    from pytest_httpserver import HTTPServer

    from traysvc.egress.client import REDIRECT_BODY_REFUSED

    other = HTTPServer(host="127.0.0.1", port=0)
    other.start()
    try:
        other.expect_request("/collect").respond_with_data("thanks")
        httpserver.expect_request("/login", method="POST").respond_with_data(
            "", status, {"Location": other.url_for("/collect")}
        )
        service = make_service(actors.member_m, base_url=httpserver.url_for("/"), name="Form")
        auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
        result = _call(actors, service, auth, method="POST", path="/login", body_type="form",
                       body=[("user", "ada"), ("password", SECRET_PASSWORD)])  # fmt: skip
        assert result.error_kind == "redirect_refused" and result.http_status == 422
        where = f"http://127.0.0.1:{other.port}/collect"
        assert result.error == REDIRECT_BODY_REFUSED.format(status=status, url=where)
        assert other.log == []
        assert_no_secret(result, SECRET_TOKEN)
    finally:
        other.stop()
