"""send() against real servers on 127.0.0.1 (allowed through HTTPCLIENT_ALLOW_NETWORKS)."""

from __future__ import annotations

import gzip
import json
import socket
import time
import tracemalloc
import zlib

import httpx
import pytest
from werkzeug import Request, Response

from traysvc.egress import (
    DestinationRefused,
    EgressError,
    close_clients,
    get_client,
    send,
)
from traysvc.egress import client as c
from traysvc.egress import errors as e
from traysvc.egress import guard as g

MB = 1024 * 1024


def _last_request(server) -> Request:
    assert server.log, "the server saw no request"
    return server.log[-1][0]


def test_loopback_is_refused_without_the_allowlist(server, no_allowlist):
    server.expect_request("/").respond_with_data("should not be reached")
    with pytest.raises(DestinationRefused) as caught:
        send("GET", server.url_for("/"))
    assert str(caught.value) == g.REFUSED_ADDRESS.format(
        address="127.0.0.1", description=g.LOOPBACK
    )
    assert server.log == []


def test_query_pairs_keep_order_and_repeats(server, allow_loopback):
    server.expect_request("/q").respond_with_data("ok")
    response = send("GET", server.url_for("/q?z=0"), params=[("a", "1"), ("b", "x y"), ("a", "3")])
    assert response.status_code == 200
    assert _last_request(server).query_string == b"z=0&a=1&b=x+y&a=3"
    assert response.url.endswith("/q?z=0&a=1&b=x+y&a=3")


def test_dict_params_and_headers_are_sent(server, allow_loopback):
    server.expect_request("/h").respond_with_data("ok")
    response = send("GET", server.url_for("/h"), params={"k": "v"}, headers={"X-Trace": "t-1"})
    seen = _last_request(server)
    assert seen.args["k"] == "v"
    assert seen.headers["X-Trace"] == "t-1"
    assert seen.headers["User-Agent"] == c.USER_AGENT
    assert response.request_headers["x-trace"] == "t-1"
    assert response.request_headers["host"] == f"127.0.0.1:{server.port}"
    # werkzeug answers HTTP/1.0 unless another test switched its handler to 1.1
    assert response.reason == "OK" and response.http_version in ("HTTP/1.0", "HTTP/1.1")
    assert response.elapsed_ms >= response.ttfb_ms > 0


def test_json_body_and_response(server, allow_loopback):
    def echo(request: Request) -> Response:
        return Response(request.get_data(), content_type="application/json; charset=utf-8")

    server.expect_request("/echo", method="POST").respond_with_handler(echo)
    response = send("POST", server.url_for("/echo"), json={"n": 1, "s": "é"})
    assert response.json() == {"n": 1, "s": "é"}
    assert "é" in response.text
    assert _last_request(server).headers["Content-Type"] == "application/json"


def test_redirects_are_followed_and_listed(server, allow_loopback):
    server.expect_request("/r1").respond_with_data("", 302, {"Location": "/r2"})
    server.expect_request("/r2").respond_with_data("", 301, {"Location": "/final?x=1"})
    server.expect_request("/final").respond_with_data("done")
    response = send("GET", server.url_for("/r1"), follow_redirects=True)
    assert response.content == b"done"
    assert response.url == server.url_for("/final?x=1")
    assert response.redirects == [server.url_for("/r1"), server.url_for("/r2")]


def test_redirect_is_returned_as_is_unless_asked(server, allow_loopback):
    server.expect_request("/r1").respond_with_data("", 302, {"Location": "/r2"})
    response = send("GET", server.url_for("/r1"))
    assert response.status_code == 302
    assert response.headers["location"] == "/r2"
    assert response.redirects == []
    assert len(server.log) == 1


def test_too_many_redirects_stop_at_the_cap(server, allow_loopback):
    for hop in range(5):
        server.expect_request(f"/hop{hop}").respond_with_data(
            "", 302, {"Location": f"/hop{hop + 1}"}
        )
    with pytest.raises(EgressError) as caught:
        send("GET", server.url_for("/hop0"), follow_redirects=True, max_redirects=2)
    assert caught.value.kind == "too_many_redirects"
    assert str(caught.value) == c.TOO_MANY_REDIRECTS.format(
        count=2, url=f"http://127.0.0.1:{server.port}/hop2"
    )
    assert len(server.log) == 3


def test_redirect_cap_defaults_to_the_setting(server, allow_loopback, settings):
    settings.HTTPCLIENT_MAX_REDIRECTS = 1
    server.expect_request("/a").respond_with_data("", 302, {"Location": "/b"})
    server.expect_request("/b").respond_with_data("", 302, {"Location": "/c"})
    with pytest.raises(EgressError) as caught:
        send("GET", server.url_for("/a"), follow_redirects=True)
    assert caught.value.kind == "too_many_redirects"


def test_redirect_loop_is_detected(server, allow_loopback):
    server.expect_request("/a").respond_with_data("", 302, {"Location": "/b"})
    server.expect_request("/b").respond_with_data("", 302, {"Location": "/a"})
    with pytest.raises(EgressError) as caught:
        send("GET", server.url_for("/a"), follow_redirects=True, max_redirects=10)
    assert caught.value.kind == "too_many_redirects"
    assert str(caught.value) == c.REDIRECT_LOOP.format(url=f"http://127.0.0.1:{server.port}/a")
    assert len(server.log) == 2


def test_303_and_post_302_become_get_without_body(server, allow_loopback):
    server.expect_request("/form", method="POST").respond_with_data("", 303, {"Location": "/seen"})
    server.expect_request("/seen", method="GET").respond_with_data("got")
    response = send("POST", server.url_for("/form"), data={"a": "1"}, follow_redirects=True)
    assert response.content == b"got"
    followed = _last_request(server)
    assert followed.method == "GET" and followed.get_data() == b""
    assert "Content-Type" not in followed.headers


def test_307_keeps_method_and_body(server, allow_loopback):
    server.expect_request("/old", method="PUT").respond_with_data("", 307, {"Location": "/new"})
    server.expect_request("/new", method="PUT").respond_with_data("put")
    response = send("PUT", server.url_for("/old"), content=b"payload", follow_redirects=True)
    assert response.content == b"put"
    assert _last_request(server).get_data() == b"payload"


def test_credentials_dropped_when_redirect_leaves_the_origin(server, other_server, allow_loopback):
    other_server.expect_request("/landing").respond_with_data("there")
    server.expect_request("/same").respond_with_data("", 302, {"Location": "/here"})
    server.expect_request("/here").respond_with_data("here")
    server.expect_request("/away").respond_with_data(
        "", 302, {"Location": other_server.url_for("/landing")}
    )
    secret = {"Authorization": "Bearer tok", "X-Api-Key": "k", "Cookie": "s=1", "X-Other": "o"}

    send("GET", server.url_for("/same"), headers=secret, follow_redirects=True,
         strip_on_redirect=["X-Api-Key"])  # fmt: skip
    kept = _last_request(server).headers
    assert (kept["Authorization"], kept["X-Api-Key"]) == ("Bearer tok", "k")

    response = send("GET", server.url_for("/away"), headers=secret, follow_redirects=True,
                    strip_on_redirect=["X-Api-Key"])  # fmt: skip
    landed = _last_request(other_server).headers
    assert "Authorization" not in landed and "X-Api-Key" not in landed and "Cookie" not in landed
    assert landed["X-Other"] == "o"
    assert "authorization" not in response.request_headers


def test_redirect_to_metadata_is_refused_at_the_hop(server, allow_loopback):
    server.expect_request("/go").respond_with_data(
        "", 302, {"Location": "http://169.254.169.254/latest/meta-data/?x=secret"}
    )
    with pytest.raises(DestinationRefused) as caught:
        send("GET", server.url_for("/go"), follow_redirects=True)
    assert str(caught.value) == g.REFUSED_ADDRESS.format(
        address="169.254.169.254", description=g.METADATA_V4
    )
    assert caught.value.url == "http://169.254.169.254:80/latest/meta-data/"


def test_redirect_to_a_private_name_is_refused_by_the_guard(server, allow_loopback, fake_dns):
    fake_dns.records["internal.test"] = ["10.0.0.7"]
    server.expect_request("/go").respond_with_data(
        "", 302, {"Location": "http://internal.test/admin"}
    )
    with pytest.raises(DestinationRefused) as caught:
        send("GET", server.url_for("/go"), follow_redirects=True)
    assert str(caught.value) == g.REFUSED_NAME.format(
        host="internal.test", address="10.0.0.7", description=g.PRIVATE
    )
    assert fake_dns.calls == [("internal.test", 80)]


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("file:///etc/passwd", g.REFUSED_SCHEME.format(scheme="file")),
        ("http://0177.0.0.1/", g.REFUSED_NONCANONICAL_IPV4.format(host="0177.0.0.1",
                                                                   address="127.0.0.1")),
    ],
)  # fmt: skip
def test_redirect_to_a_bad_url_is_refused(server, allow_loopback, location, message):
    server.expect_request("/go").respond_with_data("", 302, {"Location": location})
    with pytest.raises(DestinationRefused) as caught:
        send("GET", server.url_for("/go"), follow_redirects=True)
    assert str(caught.value) == message


def test_dns_rebinding_is_checked_per_connection(server, allow_loopback, fake_dns):
    # First answer passes (loopback is allowed here), the second is private.
    fake_dns.records["rebind.test"] = [["127.0.0.1"], ["10.0.0.5"]]
    server.expect_request("/").respond_with_data("hello")
    url = f"http://rebind.test:{server.port}/"
    response = send("GET", url)
    assert response.content == b"hello"
    assert fake_dns.calls == [("rebind.test", server.port)]  # resolved once, not re-resolved
    assert _last_request(server).headers["Host"] == f"rebind.test:{server.port}"
    # The server closes each connection, so the next request resolves again, and is refused.
    with pytest.raises(DestinationRefused) as caught:
        send("GET", url)
    assert "resolves to 10.0.0.5" in str(caught.value)
    assert len(fake_dns.calls) == 2
    assert len(server.log) == 1


def test_one_private_answer_refuses_the_name(server, allow_loopback, fake_dns):
    fake_dns.records["mixed.test"] = ["127.0.0.1", "10.0.0.5"]
    server.expect_request("/").respond_with_data("hello")
    with pytest.raises(DestinationRefused):
        send("GET", f"http://mixed.test:{server.port}/")
    assert server.log == []


def test_body_over_the_cap_is_truncated(server, allow_loopback):
    server.expect_request("/big").respond_with_data(b"x" * 5000)
    server.expect_request("/exact").respond_with_data(b"y" * 1000)
    big = send("GET", server.url_for("/big"), max_bytes=1000)
    assert (len(big.content), big.truncated) == (1000, True)
    exact = send("GET", server.url_for("/exact"), max_bytes=1000)
    assert (len(exact.content), exact.truncated) == (1000, False)


def test_body_cap_defaults_to_the_setting(server, allow_loopback, settings):
    settings.HTTPCLIENT_MAX_RESPONSE_BYTES = 10
    server.expect_request("/big").respond_with_data(b"x" * 50)
    response = send("GET", server.url_for("/big"))
    assert response.content == b"x" * 10 and response.truncated


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """About 0.9 MB of gzip that inflates to 200 MB of zeros."""
    deflater = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(MB)
    return b"".join([deflater.compress(zeros) for _ in range(200)] + [deflater.flush()])


@pytest.fixture
def bomb_port(gzip_bomb, raw_servers) -> int:
    """Serves the bomb from a bare socket, so that the memory measured is the client's
    (werkzeug formats a large error when the client hangs up early)."""
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        f"Content-Length: {len(gzip_bomb)}\r\n\r\n"
    ).encode()

    def handle(conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(head + gzip_bomb)
        except OSError:
            pass
        finally:
            conn.close()

    return raw_servers.start(handle)


def test_gzip_bomb_stops_at_the_cap(bomb_port, allow_loopback, gzip_bomb):
    tracemalloc.start()
    try:
        response = send("GET", f"http://127.0.0.1:{bomb_port}/bomb", max_bytes=MB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.truncated
    assert response.content == bytes(MB)
    assert response.downloaded_bytes < len(gzip_bomb) // 4  # it stopped reading early
    assert peak < 8 * MB  # the cap, a decoded chunk and the copies; not 200 MB


def test_gzip_deflate_and_brotli_are_decoded(server, allow_loopback):
    brotli = pytest.importorskip("brotlicffi")
    text = b"hello " * 1000
    server.expect_request("/gz").respond_with_data(
        gzip.compress(text), headers={"Content-Encoding": "gzip"}
    )
    server.expect_request("/df").respond_with_data(
        zlib.compress(text), headers={"Content-Encoding": "deflate"}
    )
    raw_deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    server.expect_request("/raw").respond_with_data(
        raw_deflate.compress(text) + raw_deflate.flush(), headers={"Content-Encoding": "deflate"}
    )
    server.expect_request("/br").respond_with_data(
        brotli.compress(text), headers={"Content-Encoding": "br"}
    )
    for path in ("/gz", "/df", "/raw", "/br"):
        response = send("GET", server.url_for(path))
        assert (response.content, response.truncated) == (text, False), path
    capped = send("GET", server.url_for("/br"), max_bytes=10)
    assert (capped.content, capped.truncated) == (text[:10], True)
    assert "gzip" in _last_request(server).headers["Accept-Encoding"]


def test_corrupt_gzip_is_a_protocol_error(server, allow_loopback):
    server.expect_request("/bad").respond_with_data(
        b"\x1f\x8bnot really gzip", headers={"Content-Encoding": "gzip"}
    )
    with pytest.raises(EgressError) as caught:
        send("GET", server.url_for("/bad?sig=secret"))
    assert caught.value.kind == "protocol"
    assert str(caught.value) == c.BODY_NOT_DECODABLE.format(
        url=f"http://127.0.0.1:{server.port}/bad", encoding="gzip"
    )


def test_timeout_against_a_server_that_never_answers(hanging_port, allow_loopback):
    started = time.monotonic()
    with pytest.raises(EgressError) as caught:
        send("GET", f"http://127.0.0.1:{hanging_port}/slow?token=secret", timeout=0.5)
    assert time.monotonic() - started < 3
    assert caught.value.kind == "timeout"
    assert str(caught.value) == e.TIMED_OUT.format(
        seconds=0.5, url=f"http://127.0.0.1:{hanging_port}/slow"
    )


def test_timeout_is_capped_by_the_setting(hanging_port, allow_loopback, settings):
    settings.HTTPCLIENT_MAX_TIMEOUT = 0.5
    started = time.monotonic()
    with pytest.raises(EgressError) as caught:
        send("GET", f"http://127.0.0.1:{hanging_port}/", timeout=60)
    assert time.monotonic() - started < 3
    assert str(caught.value).startswith("timed out after 0.5 s")


def test_timeout_must_be_positive(allow_loopback):
    with pytest.raises(ValueError, match=c.TIMEOUT_NOT_POSITIVE):
        send("GET", "http://127.0.0.1:1/", timeout=0)


def test_server_closing_at_once_is_a_readable_error(closing_port, allow_loopback):
    with pytest.raises(EgressError) as caught:
        send("GET", f"http://127.0.0.1:{closing_port}/x?k=secret")
    assert caught.value.kind in {"connect", "protocol"}
    where = f"http://127.0.0.1:{closing_port}/x"
    assert where in str(caught.value) and "secret" not in str(caught.value)
    assert str(caught.value).startswith(("the server at", "the connection to"))


def test_connection_reset_is_a_readable_error(resetting_port, allow_loopback):
    with pytest.raises(EgressError) as caught:
        send("POST", f"http://127.0.0.1:{resetting_port}/x", content=b"data")
    assert caught.value.kind in {"connect", "protocol"}
    assert f"http://127.0.0.1:{resetting_port}/x" in str(caught.value)


def test_connection_refused(refused_port, allow_loopback):
    with pytest.raises(EgressError) as caught:
        send("GET", f"http://127.0.0.1:{refused_port}/")
    assert caught.value.kind == "connect"
    assert str(caught.value) == e.CONNECT_FAILED.format(
        url=f"http://127.0.0.1:{refused_port}/", detail="connection refused"
    )


def test_header_injection_is_not_sent(server, allow_loopback):
    server.expect_request("/").respond_with_data("ok")
    with pytest.raises(EgressError) as caught:
        send("GET", server.url_for("/"), headers={"X-Bad": "a\r\nInjected: secret"})
    assert caught.value.kind == "protocol"
    assert "secret" not in str(caught.value)
    assert server.log == []


def test_allow_origins_exempts_only_that_origin(server, other_server, no_allowlist):
    server.expect_request("/sandbox").respond_with_data("sandbox")
    other_server.expect_request("/sandbox").respond_with_data("other")
    origins = frozenset({("http", "127.0.0.1", server.port)})
    assert send("GET", server.url_for("/sandbox"), allow_origins=origins).content == b"sandbox"
    with pytest.raises(DestinationRefused):
        send("GET", other_server.url_for("/sandbox"), allow_origins=origins)
    with pytest.raises(DestinationRefused):
        send("GET", f"https://127.0.0.1:{server.port}/sandbox", allow_origins=origins)
    with pytest.raises(DestinationRefused):
        send("GET", server.url_for("/sandbox"))  # loopback in general stays closed
    assert other_server.log == []


def test_exempt_origin_by_name_does_not_open_it_for_others(server, no_allowlist, fake_dns):
    fake_dns.records["sandbox.test"] = ["127.0.0.1"]
    server.expect_request("/").respond_with_data("sandbox")
    url = f"http://sandbox.test:{server.port}/"
    origins = frozenset({("http", "sandbox.test", server.port)})
    assert send("GET", url, allow_origins=origins).content == b"sandbox"
    with pytest.raises(DestinationRefused):
        send("GET", url)
    assert len(server.log) == 1


def test_exemption_does_not_follow_a_redirect_elsewhere(server, no_allowlist):
    server.expect_request("/go").respond_with_data(
        "", 302, {"Location": "http://127.0.0.1:9/elsewhere"}
    )
    origins = frozenset({("http", "127.0.0.1", server.port)})
    with pytest.raises(DestinationRefused):
        send("GET", server.url_for("/go"), allow_origins=origins, follow_redirects=True)


def test_pooled_client_is_shared_and_keeps_connections_alive(keepalive_server, allow_loopback):
    assert get_client() is get_client()
    assert get_client(verify=False) is not get_client()
    url = f"http://127.0.0.1:{keepalive_server.server_address[1]}/"
    first = send("GET", url)
    second = send("GET", url)
    assert first.content == second.content == b"ok"
    assert keepalive_server.requests == 2
    assert len(keepalive_server.peers) == 1  # the second request reused the connection
    before = get_client()
    close_clients()
    assert get_client() is not before


def test_client_never_keeps_cookies(server, allow_loopback):
    server.expect_request("/set").respond_with_data("ok", headers={"Set-Cookie": "sid=abc"})
    server.expect_request("/next").respond_with_data("ok")
    send("GET", server.url_for("/set"))
    send("GET", server.url_for("/next"))
    assert "Cookie" not in _last_request(server).headers
    assert len(get_client().cookies) == 0


def test_raw_client_still_goes_through_the_guard(no_allowlist):
    with pytest.raises(DestinationRefused):
        get_client().get("http://10.0.0.5:9/")


def test_json_helper_reports_bad_json(server, allow_loopback):
    server.expect_request("/").respond_with_data("not json")
    with pytest.raises(json.JSONDecodeError):
        send("GET", server.url_for("/")).json()


def test_tls_keeps_the_name_for_sni_and_host(tls_server, allow_loopback, fake_dns):
    server, sni_names = tls_server
    fake_dns.records["tls.test"] = ["127.0.0.1"]
    server.expect_request("/secure").respond_with_data("over tls")
    url = f"https://tls.test:{server.port}/secure"
    response = send("GET", url, verify=False)
    assert response.content == b"over tls"
    assert sni_names == ["tls.test"]
    assert _last_request(server).headers["Host"] == f"tls.test:{server.port}"


def test_untrusted_certificate_is_a_tls_error(tls_server, allow_loopback, fake_dns):
    server, _ = tls_server
    fake_dns.records["tls.test"] = ["127.0.0.1"]
    with pytest.raises(EgressError) as caught:
        send("GET", f"https://tls.test:{server.port}/secure?k=secret")
    assert caught.value.kind == "tls"
    assert str(caught.value) == e.TLS_FAILED.format(
        url=f"https://tls.test:{server.port}/secure", detail="self-signed certificate"
    )
    assert server.log == []


def test_digest_auth_answers_the_challenge(server, allow_loopback):
    challenge = 'Digest realm="r", nonce="abc", qop="auth", algorithm=MD5'

    def handler(request: Request) -> Response:
        if not request.headers.get("Authorization", "").startswith("Digest "):
            return Response("", 401, {"WWW-Authenticate": challenge})
        return Response("in")

    server.expect_request("/d").respond_with_handler(handler)
    response = send("GET", server.url_for("/d"), auth=httpx.DigestAuth("u", "p"))
    assert response.status_code == 200 and response.content == b"in"
    assert response.request_headers["authorization"].startswith('Digest username="u"')
    assert len(server.log) == 2


def test_auth_is_not_applied_after_leaving_the_origin(server, other_server, allow_loopback):
    server.expect_request("/away").respond_with_data(
        "", 307, {"Location": other_server.url_for("/landing")}
    )
    other_server.expect_request("/landing").respond_with_data("there")
    send("GET", server.url_for("/away"), auth=httpx.BasicAuth("u", "p"), follow_redirects=True)
    assert _last_request(server).headers["Authorization"].startswith("Basic ")
    assert "Authorization" not in _last_request(other_server).headers


class _BodyReadingAuth(httpx.Auth):
    """Needs the first response's body to build the second request (like a token dance)."""

    requires_response_body = True

    def auth_flow(self, request):
        response = yield request
        request.headers["X-Nonce"] = response.json()["nonce"]
        yield request


def test_auth_flow_that_reads_bodies_stays_within_the_cap(server, allow_loopback):
    def handler(request: Request) -> Response:
        if "X-Nonce" not in request.headers:
            return Response(json.dumps({"nonce": "n1"}), 401)
        return Response(request.headers["X-Nonce"] * 100)

    server.expect_request("/n").respond_with_handler(handler)
    response = send("GET", server.url_for("/n"), auth=_BodyReadingAuth(), max_bytes=50)
    assert response.status_code == 200
    assert (response.content, response.truncated) == (b"n1" * 25, True)


def test_malformed_digest_challenge_is_a_protocol_error(server, allow_loopback):
    server.expect_request("/d").respond_with_data("", 401, {"WWW-Authenticate": "Digest qop=auth"})
    with pytest.raises(EgressError) as caught:
        send("GET", server.url_for("/d"), auth=httpx.DigestAuth("u", "p"))
    assert caught.value.kind == "protocol"
    assert str(caught.value).startswith(f"the server at {server.url_for('/d')} broke")
