"""Bad input and bad upstreams: each a clear error in the result, a CallLog row, no leak."""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug import Response

from httpclient.models import CallLog
from httpclient.runner import Call, execute
from httpclient.runner import types as T
from tests.httpclient.conftest import SECRET_TOKEN, make_auth, make_service
from tests.httpclient.test_runner_requests import assert_no_secret
from workspaces.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    """A one-behaviour TCP server: raw_server(handler) -> its base URL."""
    servers: list[socket.socket] = []

    def start(handler: Callable[[socket.socket], None]) -> str:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        servers.append(listener)

        def serve() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=handler, args=(conn,), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    for listener in servers:
        listener.close()


def _read_request(conn: socket.socket) -> None:
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk


def reset(conn: socket.socket) -> None:
    _read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # RST


def hang(conn: socket.socket) -> None:
    _read_request(conn)
    time.sleep(3)
    conn.close()


def short_body(conn: socket.socket) -> None:
    _read_request(conn)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly ten b"
    )
    conn.close()


@pytest.fixture
def svc(actors, loopback, httpserver):  # type: ignore[no-untyped-def]
    service = make_service(actors.member_m, base_url=httpserver.url_for("/"), name="Upstream")
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    return service, auth


def run(actors, service, auth, **kw: Any):  # type: ignore[no-untyped-def]
    return execute(Call(membership=actors.member_m, service=service.public_id,
                        authentication=auth.public_id if auth else None, **kw))  # fmt: skip


def logged(result: Any) -> CallLog:
    return CallLog.objects.get(public_id=result.call_id)


# ---- input refused before sending: 404 / 422, still logged -------------------------------------


def test_header_with_cr_lf_is_422(actors, svc) -> None:  # type: ignore[no-untyped-def]
    service, auth = svc
    result = run(actors, service, auth, path="/x", headers={"X-Evil": "a\r\nInjected: 1"})
    assert result.http_status == 422 and result.error_field == "headers"
    assert result.error == T.HEADER_LINE_BREAK.format(name="X-Evil")
    row = logged(result)
    assert row.status is None and row.error_kind == "invalid" and row.attempts == 0


def test_invalid_json_body_is_422_with_the_position(actors, svc) -> None:  # type: ignore[no-untyped-def]
    service, auth = svc
    result = run(actors, service, auth, method="POST", path="/x", body_type="json", body='{"a": }')
    assert result.http_status == 422
    assert result.error == T.JSON_INVALID.format(error="Expecting value", line=1, column=7)
    assert logged(result).error == result.error


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"method": "TRACE"}, T.METHOD_INVALID.format(methods=", ".join(T.METHODS))),
        ({"body_type": "xml"}, T.BODY_TYPE_INVALID.format(types=", ".join(T.BODY_TYPES))),
        ({"headers": {"Host": "evil.example"}}, T.HEADER_MANAGED.format(name="Host")),
        ({"headers": {"Bad Name": "x"}}, T.HEADER_NAME_INVALID.format(name="Bad Name")),
        ({"path": "/a b"}, T.PATH_CONTROL),
        ({"timeout": -1}, T.TIMEOUT_INVALID),
    ],
    ids=["method", "body-type", "managed-header", "header-name", "path-space", "timeout"],
)
def test_other_bad_input_is_422(actors, svc, kw, message) -> None:  # type: ignore[no-untyped-def]
    service, auth = svc
    result = run(actors, service, auth, **{"path": "/x", **kw})
    assert (result.http_status, result.error) == (422, message)
    assert CallLog.objects.filter(public_id=result.call_id, error=message).exists()


def test_authentication_of_another_service_is_422(actors, svc, httpserver) -> None:  # type: ignore[no-untyped-def]
    service, _ = svc
    other = make_service(actors.member_m, base_url=httpserver.url_for("/"), name="Other")
    other_auth = make_auth(actors.member_m, other, {"token": "other-token-xyz"}, name="Other auth")
    result = run(actors, service, other_auth, path="/x")
    assert result.http_status == 422
    assert result.error == T.AUTHENTICATION_OTHER_SERVICE.format(service="Upstream")
    assert len(httpserver.log) == 0


def test_objects_of_another_org_are_404_and_unused(actors, svc, httpserver) -> None:  # type: ignore[no-untyped-def]
    service, auth = svc
    outsider = execute(Call(membership=actors.outsider_m, service=service.public_id,
                            authentication=auth.public_id, path="/x"))  # fmt: skip
    assert (outsider.http_status, outsider.error) == (404, T.SERVICE_NOT_FOUND)
    b_service = make_service(actors.outsider_m, base_url=httpserver.url_for("/"), name="B")
    b_auth = make_auth(actors.outsider_m, b_service, {"token": "b-token-secret"})
    cross = run(actors, service, b_auth, path="/x")
    assert (cross.http_status, cross.error) == (404, T.AUTHENTICATION_NOT_FOUND)
    row = logged(cross)
    assert row.organization_id == actors.org_a.pk and row.authentication_id is None
    assert len(httpserver.log) == 0


def test_a_colleagues_personal_authentication_is_404(actors, svc) -> None:  # type: ignore[no-untyped-def]
    service, auth = svc  # in the member's personal workspace
    result = execute(Call(membership=actors.admin_m, service=service.public_id,
                          authentication=auth.public_id, path="/x"))  # fmt: skip
    assert (result.http_status, result.error) == (404, T.AUTHENTICATION_NOT_FOUND)


# ---- upstream faults -------------------------------------------------------------------------


def test_429_retry_after_is_honoured_and_attempts_reported(actors, svc, httpserver) -> None:  # type: ignore[no-untyped-def]
    service, auth = svc
    httpserver.expect_ordered_request("/busy").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "1"}
    )
    httpserver.expect_ordered_request("/busy").respond_with_data(
        "", status=503, headers={"Retry-After": "0"}
    )
    httpserver.expect_ordered_request("/busy").respond_with_json({"done": True})
    started = time.monotonic()
    result = run(actors, service, auth, path="/busy")
    assert result.status == 200 and result.body == {"done": True}
    assert result.attempts == 3
    assert [(r.status, r.reason) for r in result.retries] == [
        (429, "Retry-After 1 s"), (503, "Retry-After 0 s")]  # fmt: skip
    assert result.retries[0].waited_ms >= 1000
    assert time.monotonic() - started >= 1.0
    assert logged(result).attempts == 3


def test_retry_after_beyond_the_cap_is_not_waited_for(actors, svc, httpserver, settings) -> None:  # type: ignore[no-untyped-def]
    settings.HTTPCLIENT_RETRY_AFTER_MAX_SECONDS = 2
    service, auth = svc
    httpserver.expect_request("/later").respond_with_data(
        "", status=429, headers={"Retry-After": "120"}
    )
    result = run(actors, service, auth, path="/later")
    assert result.status == 429 and result.attempts == 1
    assert result.notes == [
        "The API asked to retry after 120 s, longer than the 2 s the runner waits: not retried."
    ]


def test_attempts_are_bounded(actors, svc, httpserver, settings) -> None:  # type: ignore[no-untyped-def]
    settings.HTTPCLIENT_MAX_ATTEMPTS = 2
    service, auth = svc
    httpserver.expect_request("/always").respond_with_data(
        "", status=429, headers={"Retry-After": "0"}
    )
    result = run(actors, service, auth, path="/always")
    assert result.status == 429 and result.attempts == 2


def test_redirect_to_the_metadata_address_is_refused_at_the_hop(actors, svc, httpserver) -> None:  # type: ignore[no-untyped-def]
    service, auth = svc
    httpserver.expect_request("/go").respond_with_data(
        "", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    result = run(actors, service, auth, path="/go")
    assert result.http_status == 422 and result.error_kind == "refused"
    assert "169.254.169.254 is a cloud metadata address" in result.error
    assert logged(result).error_kind == "refused"
    event = AuditEvent.objects.get(action="call.refused")
    assert event.organization_id == actors.org_a.pk and "169.254.169.254" in event.details["reason"]


def test_loopback_is_refused_without_the_allow_list(actors, httpserver, settings) -> None:  # type: ignore[no-untyped-def]
    settings.HTTPCLIENT_ALLOW_NETWORKS = []
    service = make_service(actors.member_m, base_url=httpserver.url_for("/"), name="Loop")
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    result = run(actors, service, auth, path="/x")
    assert result.error_kind == "refused" and "loopback" in result.error
    assert len(httpserver.log) == 0


def test_sandbox_origin_is_exempt_only_when_the_sandbox_is_on(actors, httpserver, settings) -> None:  # type: ignore[no-untyped-def]
    settings.HTTPCLIENT_ALLOW_NETWORKS = []
    base = httpserver.url_for("/").rstrip("/")
    settings.TRAYSVC_PUBLIC_URL = base
    httpserver.expect_request("/sandbox/api/me").respond_with_json({"me": 1})
    service = make_service(actors.member_m, base_url=f"{base}/sandbox/api", name="Sandbox")
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    settings.TRAYSVC_SANDBOX = False
    assert run(actors, service, auth, path="/me").error_kind == "refused"
    settings.TRAYSVC_SANDBOX = True
    assert run(actors, service, auth, path="/me").status == 200
    other = make_service(actors.member_m, base_url="http://127.0.0.2:9/x", name="Elsewhere")
    other_auth = make_auth(actors.member_m, other, {"token": SECRET_TOKEN}, name="E")
    assert run(actors, other, other_auth, path="/me").error_kind == "refused"


def test_size_cap_truncates_with_a_flag(actors, svc, httpserver, settings) -> None:  # type: ignore[no-untyped-def]
    settings.HTTPCLIENT_MAX_RESPONSE_BYTES = 1000
    service, auth = svc
    httpserver.expect_request("/big").respond_with_data("x" * 50_000, content_type="text/plain")
    result = run(actors, service, auth, path="/big")
    assert result.status == 200 and result.truncated and result.body == "x" * 1000
    assert logged(result).response_truncated


def test_gzip_bomb_is_cut_at_the_cap(actors, svc, httpserver, settings) -> None:  # type: ignore[no-untyped-def]
    settings.HTTPCLIENT_MAX_RESPONSE_BYTES = 64 * 1024
    service, auth = svc
    bomb = gzip.compress(b"\0" * (32 * 1024 * 1024), compresslevel=9)
    httpserver.expect_request("/bomb").respond_with_response(
        Response(
            bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"}
        )
    )
    result = run(actors, service, auth, path="/bomb")
    assert result.truncated and result.body_bytes == 64 * 1024


def test_a_hanging_upstream_times_out(actors, loopback, raw_server) -> None:  # type: ignore[no-untyped-def]
    service = make_service(actors.member_m, base_url=raw_server(hang), name="Hang")
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    started = time.monotonic()
    result = run(actors, service, auth, path="/slow", timeout=0.5)
    assert time.monotonic() - started < 2
    assert result.error_kind == "timeout" and result.http_status == 504
    assert result.error.startswith("timed out after 0.5 s")
    assert logged(result).error_kind == "timeout"


def test_a_reset_connection_is_a_clear_error(actors, loopback, raw_server) -> None:  # type: ignore[no-untyped-def]
    service = make_service(actors.member_m, base_url=raw_server(reset), name="Reset")
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    result = run(actors, service, auth, path=f"/p?access_token={SECRET_TOKEN}")
    assert result.error_kind in ("connect", "protocol") and result.http_status == 502
    assert "connection" in result.error or "protocol" in result.error
    assert result.attempts == 1
    assert "access_token=<TOKEN>" in result.curl  # copy as curl works for a failed call too
    assert_no_secret(result, SECRET_TOKEN)


def test_a_truncated_body_is_a_protocol_error(actors, loopback, raw_server) -> None:  # type: ignore[no-untyped-def]
    service = make_service(actors.member_m, base_url=raw_server(short_body), name="Short")
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    result = run(actors, service, auth, path="/short")
    assert result.error_kind == "protocol" and result.http_status == 502
    assert logged(result).error == result.error


def test_a_redirect_loop_stops(actors, svc, httpserver) -> None:  # type: ignore[no-untyped-def]
    service, auth = svc
    httpserver.expect_request("/loop").respond_with_data(
        "", status=302, headers={"Location": "/loop"}
    )
    result = run(actors, service, auth, path="/loop")
    assert result.error_kind == "too_many_redirects" and "redirect loop" in result.error


def test_the_worker_still_serves_after_faults(actors, svc, httpserver, raw_server) -> None:  # type: ignore[no-untyped-def]
    service, auth = svc
    httpserver.expect_request("/ok").respond_with_json({"ok": 1})
    bad = make_service(actors.member_m, base_url=raw_server(reset), name="Bad")
    bad_auth = make_auth(actors.member_m, bad, {"token": SECRET_TOKEN}, name="bad")
    for _ in range(3):
        assert run(actors, bad, bad_auth, path="/x").error
        assert run(actors, service, auth, path="/ok").status == 200
    assert CallLog.objects.filter(organization=actors.org_a).count() == 6
