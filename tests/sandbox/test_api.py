"""The sandbox demo API: bearer-protected JSON endpoints shaped like real APIs."""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import encode_multipart

from sandbox import views

pytestmark = pytest.mark.django_db

LINK_RE = re.compile(r'<([^>]+)>;\s*rel="([^"]+)"')


@pytest.fixture
def token(provider) -> str:  # type: ignore[no-untyped-def]
    return provider.grant()["access_token"]


def links(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {rel: url for url, rel in LINK_RE.findall(response.get("Link", ""))}


@pytest.mark.parametrize("path", ["me", "items", "flaky", "echo"])
def test_every_endpoint_needs_a_token(provider, path) -> None:  # type: ignore[no-untyped-def]
    response = provider.api("GET", path, None)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_token", "detail": views.ERR_INVALID_TOKEN}
    assert response["WWW-Authenticate"] == "Bearer"


def test_unknown_token_answers_401_with_a_bearer_challenge(provider) -> None:  # type: ignore[no-untyped-def]
    response = provider.api("GET", "me", "not-a-token")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_token_in_the_query_string_is_refused(provider, token) -> None:  # type: ignore[no-untyped-def]
    response = provider.api("GET", f"me?access_token={token}", None)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_token", "detail": views.ERR_INVALID_TOKEN}
    assert response["WWW-Authenticate"] == "Bearer"
    assert token not in response.content.decode()
    # the very same token is good in the header: it was refused for where it was, not what
    accepted = provider.api("GET", "me", token)
    assert accepted.status_code == 200
    assert accepted.json()["email"] == "sandbox-user@example.com"


def test_missing_scope_answers_403(provider) -> None:  # type: ignore[no-untyped-def]
    read_only = provider.exchange(*provider.code(scope="read"))["access_token"]
    assert provider.api("GET", "items", read_only).status_code == 200
    response = provider.api("GET", "me", read_only)
    assert response.status_code == 403
    assert response.json()["detail"] == views.ERR_INSUFFICIENT_SCOPE.format(scopes="profile")
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]


def test_me_describes_the_token(provider, token) -> None:  # type: ignore[no-untyped-def]
    body = provider.api("GET", "me", token).json()
    assert body["email"] == "sandbox-user@example.com"
    assert body["scopes"] == ["profile", "read"]
    assert body["client_id"] == "traysvc-sandbox-web"
    assert body["expires_at"]


def test_items_walk_through_45_items_by_the_next_cursor(provider, token) -> None:  # type: ignore[no-untyped-def]
    seen, page, pages = [], "1", 0
    while page is not None:
        body = provider.api("GET", f"items?page={page}&per_page=10", token).json()
        seen += [item["number"] for item in body["items"]]
        page, pages = body["next"], pages + 1
    assert seen == list(range(1, 46))
    assert pages == 5


def test_items_link_header_points_at_the_next_page(provider, token) -> None:  # type: ignore[no-untyped-def]
    first = provider.api("GET", "items?per_page=20", token)
    assert first.json()["total"] == 45
    assert links(first) == {"next": "http://testserver/sandbox/api/items?page=2&per_page=20"}
    middle = provider.api("GET", "items?page=2&per_page=20", token)
    assert links(middle) == {
        "next": "http://testserver/sandbox/api/items?page=3&per_page=20",
        "prev": "http://testserver/sandbox/api/items?page=1&per_page=20",
    }
    last = provider.api("GET", "items?page=3&per_page=20", token)
    assert [i["number"] for i in last.json()["items"]] == [41, 42, 43, 44, 45]
    assert last.json()["next"] is None
    assert "next" not in links(last)


def test_items_defaults_caps_and_past_the_end(provider, token) -> None:  # type: ignore[no-untyped-def]
    default = provider.api("GET", "items", token).json()
    assert (default["page"], default["per_page"], len(default["items"])) == (1, 10, 10)
    assert default["items"][0] == {"id": "item-001", "number": 1, "name": "Sandbox item 1",
                                   "even": False}  # fmt: skip
    capped = provider.api("GET", "items?per_page=500", token).json()
    assert capped["per_page"] == 50 and len(capped["items"]) == 45 and capped["next"] is None
    beyond = provider.api("GET", "items?page=9", token).json()
    assert beyond["items"] == [] and beyond["next"] is None


@pytest.mark.parametrize("query", ["page=0", "page=x", "per_page=-1"])
def test_items_refuses_bad_numbers(provider, token, query) -> None:  # type: ignore[no-untyped-def]
    response = provider.api("GET", f"items?{query}", token)
    assert response.status_code == 400
    name = query.split("=")[0]
    assert response.json()["detail"] == views.ERR_NOT_POSITIVE.format(name=name)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_flaky_fails_with_the_status_asked_for(provider, token, status) -> None:  # type: ignore[no-untyped-def]
    response = provider.api("GET", f"flaky?status={status}&retry_after=3", token)
    assert response.status_code == status
    assert response["Retry-After"] == "3"
    assert response.json()["detail"] == views.ERR_FLAKY_FAILED.format(status=status)


def test_flaky_defaults_to_503_without_retry_after(provider, token) -> None:  # type: ignore[no-untyped-def]
    response = provider.api("GET", "flaky", token)
    assert response.status_code == 503
    assert "Retry-After" not in response


def test_flaky_fails_k_times_per_key_then_succeeds(provider, token) -> None:  # type: ignore[no-untyped-def]
    statuses = [
        provider.api("GET", "flaky?status=429&fail_times=2&key=run-1", token).status_code
        for _ in range(4)
    ]
    assert statuses == [429, 429, 200, 200]
    ok = provider.api("GET", "flaky?status=429&fail_times=2&key=run-1", token).json()
    assert ok == {"ok": True, "attempt": 5, "key": "run-1"}
    # Another key has its own counter.
    fresh = provider.api("GET", "flaky?status=500&fail_times=1&key=run-2", token)
    assert fresh.status_code == 500 and fresh.json()["attempt"] == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=418", views.ERR_FLAKY_STATUS),
        ("retry_after=soon", views.ERR_RETRY_AFTER),
        ("retry_after=99999", views.ERR_RETRY_AFTER),
        ("fail_times=2", views.ERR_FAIL_TIMES_KEY),
        ("fail_times=-1&key=k", views.ERR_FAIL_TIMES),
    ],
)
def test_flaky_refuses_bad_parameters(provider, token, query, message) -> None:  # type: ignore[no-untyped-def]
    response = provider.api("GET", f"flaky?{query}", token)
    assert response.status_code == 400
    assert response.json()["detail"] == message


def test_echo_reflects_json_without_the_credential(provider, token) -> None:  # type: ignore[no-untyped-def]
    response = provider.api(
        "POST", "echo?b=2&a=1&b=3", token, data=json.dumps({"hello": "sandbox"}),
        content_type="application/json", HTTP_X_TRACE="t-1", HTTP_COOKIE="sessionid=secret",
    )  # fmt: skip
    assert response.status_code == 200
    body = response.json()
    assert body["method"] == "POST"
    assert body["query"] == [["b", "2"], ["a", "1"], ["b", "3"]]
    assert body["json"] == {"hello": "sandbox"}
    assert body["headers"]["X-Trace"] == "t-1"
    lowered = {name.lower() for name in body["headers"]}
    assert "authorization" not in lowered and "cookie" not in lowered
    assert token not in response.content.decode()


def test_echo_reflects_forms_and_uploads_for_put(provider, token) -> None:  # type: ignore[no-untyped-def]
    form = provider.api(
        "PATCH", "echo", token, data="x=1&x=2&y=z", content_type="application/x-www-form-urlencoded"
    ).json()
    assert form["method"] == "PATCH"
    assert form["form"] == {"x": ["1", "2"], "y": ["z"]}
    boundary = "sandboxboundary"
    upload = SimpleUploadedFile("notes.txt", b"hello", content_type="text/plain")
    multipart = provider.api(
        "PUT", "echo", token, data=encode_multipart(boundary, {"name": "n", "file": upload}),
        content_type=f"multipart/form-data; boundary={boundary}",
    ).json()  # fmt: skip
    assert multipart["form"] == {"name": ["n"]}
    assert multipart["files"] == [
        {"field": "file", "filename": "notes.txt", "size": 5, "content_type": "text/plain"}
    ]


def test_echo_refuses_large_bodies(provider, token) -> None:  # type: ignore[no-untyped-def]
    response = provider.api(
        "POST", "echo", token, data="x" * (views.ECHO_BODY_LIMIT + 1), content_type="text/plain"
    )
    assert response.status_code == 413
    assert response.json()["detail"] == views.ERR_BODY_TOO_LARGE


def test_api_posts_need_no_csrf_token(provider, token) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/sandbox/api/echo", {"a": "1"}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
