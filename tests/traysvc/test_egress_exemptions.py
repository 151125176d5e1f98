"""Path-scoped exemptions (checked at every hop, never sharing a connection with other paths)
and 307/308 redirects that would resend a body to another origin."""

from __future__ import annotations

import httpx
import pytest

from traysvc.egress import DestinationRefused, EgressError, check_destination, send
from traysvc.egress import client as c
from traysvc.egress import guard as g


def _sandbox(server) -> frozenset:  # type: ignore[no-untyped-def]
    return frozenset({("http", "127.0.0.1", server.port, "/sandbox/")})


def test_prefix_exemption_covers_only_paths_under_it(server, no_allowlist):
    server.expect_request("/sandbox/x").respond_with_data("sandbox")
    server.expect_request("/admin/").respond_with_data("admin")
    allow = _sandbox(server)
    assert send("GET", server.url_for("/sandbox/x"), allow_origins=allow).content == b"sandbox"
    for path in ("/admin/", "/sandbox", "/sandboxed/x", "/sandbox/%2e%2e/admin/",
                 "/sandbox/..%2Fadmin/", "/sandbox/%5C..%5Cadmin/"):  # fmt: skip
        with pytest.raises(DestinationRefused) as caught:
            send("GET", server.url_for(path), allow_origins=allow)
        assert caught.value.kind == "refused", path
    assert [r.path for r, _ in server.log] == ["/sandbox/x"]


def test_a_plain_origin_still_exempts_the_whole_origin(server, no_allowlist):
    server.expect_request("/admin/").respond_with_data("admin")
    allow = frozenset({("http", "127.0.0.1", server.port)})
    assert send("GET", server.url_for("/admin/"), allow_origins=allow).content == b"admin"


def test_every_redirect_hop_is_matched_against_the_prefix(server, no_allowlist):
    server.expect_request("/sandbox/go").respond_with_data("", 302, {"Location": "/api/v1/"})
    server.expect_request("/sandbox/in").respond_with_data("", 302, {"Location": "/sandbox/ok"})
    server.expect_request("/sandbox/ok").respond_with_data("ok")
    server.expect_request("/api/v1/").respond_with_data("api")
    allow = _sandbox(server)
    inside = send("GET", server.url_for("/sandbox/in"), allow_origins=allow, follow_redirects=True)
    assert inside.content == b"ok"
    with pytest.raises(DestinationRefused) as caught:
        send("GET", server.url_for("/sandbox/go"), allow_origins=allow, follow_redirects=True)
    assert "loopback" in str(caught.value)
    assert "/api/v1/" not in [r.path for r, _ in server.log]


def test_an_exempt_keepalive_connection_is_not_reused_for_other_paths(
    keepalive_server, no_allowlist
):
    port = keepalive_server.server_address[1]
    allow = frozenset({("http", "127.0.0.1", port, "/sandbox/")})
    assert send("GET", f"http://127.0.0.1:{port}/sandbox/a", allow_origins=allow).content == b"ok"
    assert send("GET", f"http://127.0.0.1:{port}/sandbox/b", allow_origins=allow).content == b"ok"
    assert len(keepalive_server.peers) == 1  # exempt requests share their connection
    with pytest.raises(DestinationRefused):
        send("GET", f"http://127.0.0.1:{port}/admin/", allow_origins=allow)
    assert keepalive_server.requests == 2


def test_check_destination_honours_the_prefix(no_allowlist):
    allow = frozenset({("http", "127.0.0.1", 8000, "/sandbox/")})
    check_destination("http://127.0.0.1:8000/sandbox/api", allow_origins=allow)
    with pytest.raises(DestinationRefused):
        check_destination("http://127.0.0.1:8000/admin/", allow_origins=allow)


@pytest.mark.parametrize(
    ("url", "prefix", "under"),
    [
        ("http://h/sandbox/x", "/sandbox/", True),
        ("http://h/sandbox/", "/sandbox/", True),
        ("http://h/sandbox", "/sandbox/", False),
        ("http://h/sandbox/../admin/", "/sandbox/", False),  # httpx resolves it to /admin/
        ("http://h/sandbox/%2E%2E/admin/", "/sandbox/", False),
        ("http://h/sandbox/./x", "/sandbox/", True),  # resolved by httpx to /sandbox/x
        ("http://h/sandbox/a\\b", "/sandbox/", False),
        ("http://h/anything", "", True),
    ],
)
def test_path_under(url: str, prefix: str, under: bool) -> None:
    assert g.path_under(httpx.URL(url), prefix) is under


# ---- 307/308 and a body -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [307, 308])
def test_a_body_is_not_resent_to_another_origin(server, other_server, allow_loopback, status):
    target = other_server.url_for("/steal?x=1")
    server.expect_request("/login", method="POST").respond_with_data(
        "", status, {"Location": target}
    )
    other_server.expect_request("/steal").respond_with_data("got it")
    with pytest.raises(EgressError) as caught:
        send("POST", server.url_for("/login"), content=b"password=SECRET-pw",
             headers={"Content-Type": "application/x-www-form-urlencoded"},
             follow_redirects=True)  # fmt: skip
    assert caught.value.kind == "redirect_refused"
    where = f"http://127.0.0.1:{other_server.port}/steal"
    assert str(caught.value) == c.REDIRECT_BODY_REFUSED.format(status=status, url=where)
    assert "x=1" not in str(caught.value)
    assert other_server.log == []


def test_a_307_on_the_same_origin_resends_the_body(server, allow_loopback):
    server.expect_request("/old", method="POST").respond_with_data("", 307, {"Location": "/new"})
    server.expect_request("/new", method="POST", data=b"payload").respond_with_data("moved")
    response = send("POST", server.url_for("/old"), content=b"payload", follow_redirects=True)
    assert response.content == b"moved"


def test_a_307_elsewhere_without_a_body_is_followed(server, other_server, allow_loopback):
    server.expect_request("/get").respond_with_data(
        "", 307, {"Location": other_server.url_for("/there")}
    )
    other_server.expect_request("/there").respond_with_data("there")
    assert send("GET", server.url_for("/get"), follow_redirects=True).content == b"there"


def test_a_302_after_post_drops_the_body_and_may_leave(server, other_server, allow_loopback):
    server.expect_request("/form", method="POST").respond_with_data(
        "", 302, {"Location": other_server.url_for("/done")}
    )
    other_server.expect_request("/done", method="GET").respond_with_data("done")
    response = send("POST", server.url_for("/form"), content=b"a=1", follow_redirects=True)
    assert response.content == b"done"
    assert other_server.log[-1][0].get_data() == b""


def test_a_header_httpx_cannot_encode_is_an_egress_error(server, allow_loopback):
    from traysvc.egress import errors as e

    with pytest.raises(EgressError) as caught:
        send("GET", server.url_for("/h"), headers={"X-Name": "Clé"})
    assert caught.value.kind == "protocol"
    assert str(caught.value) == e.REQUEST_NOT_SENDABLE.format(
        url=f"http://127.0.0.1:{server.port}/h"
    )
    assert server.log == []
