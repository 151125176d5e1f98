"""All pages: the runner follows the service's declared pagination, within its caps."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug import Request, Response

from httpclient.runner import Call, execute
from tests.httpclient.conftest import SECRET_TOKEN, make_auth, make_service

pytestmark = pytest.mark.django_db

ITEMS = [{"id": f"i{n}"} for n in range(7)]


def cursor_pages(request: Request) -> Response:
    """Stripe-like: ?starting_after=<id>&limit=3, has_more; the token must be on every page."""
    import json

    assert request.headers.get("Authorization") == f"Bearer {SECRET_TOKEN}"
    after = request.args.get("starting_after")
    start = next((i + 1 for i, it in enumerate(ITEMS) if it["id"] == after), 0)
    limit = int(request.args.get("limit", "3"))
    page = ITEMS[start : start + limit]
    body = {"data": page, "has_more": start + limit < len(ITEMS)}
    return Response(json.dumps(body), content_type="application/json")


def run(actors, service, auth, **kw: Any):  # type: ignore[no-untyped-def]
    return execute(Call(membership=actors.member_m, service=service.public_id,
                        authentication=auth.public_id, **kw))  # fmt: skip


def test_cursor_pages_are_all_fetched_and_their_items_joined(actors, loopback, httpserver) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/v1/items").respond_with_handler(cursor_pages)
    service = make_service(
        actors.member_m, base_url=httpserver.url_for("/v1"), name="Cursor",
        pagination={"kind": "cursor", "cursor_path": "data.-1.id",
                    "cursor_param": "starting_after", "limit_param": "limit", "items_path": "data"},
    )  # fmt: skip
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    result = run(actors, service, auth, path="/items", query={"limit": "3"}, all_pages=True)
    assert result.status == 200, result.error
    assert result.body == ITEMS
    assert [(p.status, p.items) for p in result.pages] == [(200, 3), (200, 3), (200, 1)]
    assert result.attempts == 3
    one = run(actors, service, auth, path="/items", query={"limit": "3"})
    assert one.body["data"] == ITEMS[:3] and one.pages == []


def test_link_pages_stop_at_the_cap_and_never_leave_the_host(
    actors, loopback, httpserver, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.HTTPCLIENT_MAX_PAGES = 3
    base = httpserver.url_for("/")
    for n in range(1, 6):
        httpserver.expect_request("/list", query_string=f"page={n}").respond_with_json(
            [n], headers={"Link": f'<{base}list?page={n + 1}>; rel="next"'}
        )
    service = make_service(actors.member_m, base_url=base, name="Link",
                           pagination={"kind": "link"})  # fmt: skip
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    capped = run(actors, service, auth, path="/list", query={"page": "1"}, all_pages=True)
    assert capped.body == [[1], [2], [3]]
    assert capped.notes == ["Stopped paging after 3 pages (the limit)."]

    httpserver.expect_request("/away").respond_with_json(
        [0], headers={"Link": '<http://127.0.0.2:9/steal?page=2>; rel="next"'}
    )
    away = run(actors, service, auth, path="/away", all_pages=True)
    assert away.status == 200 and len(away.pages) == 1
    assert away.notes[0].startswith("Stopped paging: the next-page link leaves the service's host")


def test_all_pages_without_declared_pagination_says_so(actors, loopback, httpserver) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/x").respond_with_json([1])
    service = make_service(actors.member_m, base_url=httpserver.url_for("/"), name="Plain")
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    result = run(actors, service, auth, path="/x", all_pages=True)
    assert result.body == [1]
    assert result.notes == ["All pages was asked for, but this service declares no pagination."]
