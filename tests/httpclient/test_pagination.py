"""Next-page rules for each declared scheme (pure functions; the loop is in test_runner_pages)."""

from __future__ import annotations

import httpx

from httpclient.pagination import link_next, next_page, parse_pagination, value_at


def spec(**kw):  # type: ignore[no-untyped-def]
    parsed = parse_pagination(kw)
    assert parsed is not None
    return parsed


def test_link_header_rel_next() -> None:
    header = (
        '<https://api.example/x?page=2>; rel="next", <https://api.example/x?page=9>; rel="last"'
    )
    assert link_next(header) == "https://api.example/x?page=2"
    assert link_next('<https://a/1>; rel="prev"') is None
    nxt = next_page(spec(kind="link"), url="https://api.example/x?page=1", query=[("page", "1")],
                    headers=httpx.Headers({"Link": header}), body=[1])  # fmt: skip
    assert nxt is not None and nxt.url == "https://api.example/x?page=2"


def test_link_in_body_is_resolved_against_the_page_url() -> None:
    nxt = next_page(spec(kind="link", cursor_path="next_page_uri"), url="https://a.example/v1/x",
                    query=[], headers=httpx.Headers(), body={"next_page_uri": "/v1/x?Page=2"})  # fmt: skip
    assert nxt is not None and nxt.url == "https://a.example/v1/x?Page=2"


def test_cursor_from_body_with_negative_index_and_has_more() -> None:
    s = spec(
        kind="cursor", cursor_path="data.-1.id", cursor_param="starting_after", items_path="data"
    )
    body = {"data": [{"id": "a"}, {"id": "b"}], "has_more": True}
    nxt = next_page(
        s, url="https://h/x", query=[("limit", "2")], headers=httpx.Headers(), body=body
    )
    assert nxt is not None and nxt.query == [("limit", "2"), ("starting_after", "b")]
    body["has_more"] = False
    assert next_page(s, url="https://h/x", query=[], headers=httpx.Headers(), body=body) is None
    assert value_at({"a": [1, 2]}, "a.5") is None


def test_cursor_from_header_stops_when_absent_or_repeated() -> None:
    s = spec(kind="cursor", cursor_path="header:X-Next", cursor_param="cursor")
    h = httpx.Headers({"X-Next": "c2"})
    nxt = next_page(s, url="https://h/x", query=[("cursor", "c1")], headers=h, body={})
    assert nxt is not None and nxt.query == [("cursor", "c2")]
    assert next_page(s, url="https://h/x", query=[("cursor", "c2")], headers=h, body={}) is None
    assert next_page(s, url="https://h/x", query=[], headers=httpx.Headers(), body={}) is None


def test_offset_and_page_advance_by_the_page_size_and_stop_on_a_short_page() -> None:
    off = spec(kind="offset", cursor_param="offset", limit_param="limit", items_path="items")
    nxt = next_page(off, url="u", query=[("limit", "2"), ("offset", "4")], headers=httpx.Headers(),
                    body={"items": [1, 2]})  # fmt: skip
    assert nxt is not None and nxt.query == [("limit", "2"), ("offset", "6")]
    assert next_page(off, url="u", query=[("limit", "2")], headers=httpx.Headers(),
                     body={"items": [1]}) is None  # fmt: skip
    page = spec(kind="page", page_param="page")
    nxt = next_page(page, url="u", query=[], headers=httpx.Headers(), body=[1, 2, 3])
    assert nxt is not None and nxt.query == [("page", "2")]
    assert next_page(page, url="u", query=[], headers=httpx.Headers(), body=[]) is None


def test_unusable_pagination_hint_is_none() -> None:
    assert parse_pagination({"kind": "cursor"}) is None  # cursor_path missing
    assert parse_pagination({}) is None
