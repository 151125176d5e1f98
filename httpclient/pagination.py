"""Following a service's declared pagination: cursor, Link header, offset or page number.

Pure functions over what a page returned (headers, parsed body) and the query of the request
that fetched it; they say how to ask for the next page, or None when this was the last. The
runner owns the loop, the caps on pages and bytes, and the same-origin check on next URLs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from services.schemas import HEADER_CURSOR_PREFIX, Pagination

_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_REL = re.compile(r"""rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))""", re.IGNORECASE)

Pairs = list[tuple[str, str]]


@dataclass(frozen=True)
class NextPage:
    """Either a whole next URL (link pagination) or the query to send to the same path."""

    url: str | None = None
    query: Pairs | None = None


def parse_pagination(raw: Mapping[str, Any] | None) -> Pagination | None:
    """The service's pagination hint, or None when it has none (or an unusable one)."""
    if not raw:
        return None
    try:
        return Pagination.model_validate(dict(raw))
    except ValidationError:
        return None


def value_at(body: Any, path: str | None) -> Any:
    """The value at a dotted path (`data.-1.id`); integer segments index lists."""
    if path is None:
        return body
    current = body
    for segment in path.split("."):
        if isinstance(current, Mapping):
            if segment not in current:
                return None
            current = current[segment]
        elif isinstance(current, list):
            try:
                current = current[int(segment)]
            except (ValueError, IndexError):
                return None
        else:
            return None
    return current


def items_of(body: Any, items_path: str | None) -> list[Any] | None:
    """The page's list of items, when it can be found."""
    value = value_at(body, items_path) if items_path else body
    return value if isinstance(value, list) else None


def link_next(header: str | None) -> str | None:
    """The rel="next" target of an RFC 8288 Link header."""
    if not header:
        return None
    for match in _LINK.finditer(header):
        target, params = match.group(1), match.group(2)
        for rel in _REL.finditer(params):
            values = (rel.group(1) or rel.group(2) or "").lower().split()
            if "next" in values:
                return target.strip()
    return None


def _get(query: Sequence[tuple[str, str]], name: str | None) -> str | None:
    if name is None:
        return None
    for key, value in query:
        if key == name:
            return value
    return None


def with_param(query: Sequence[tuple[str, str]], name: str, value: str) -> Pairs:
    """The query with `name` set to `value` once, where it first appeared (else at the end)."""
    out: Pairs = []
    placed = False
    for key, current in query:
        if key == name:
            if not placed:
                out.append((key, value))
                placed = True
            continue
        out.append((key, current))
    if not placed:
        out.append((name, value))
    return out


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default  # type: ignore[arg-type]
    except ValueError:
        return default


def next_page(
    spec: Pagination,
    *,
    url: str,
    query: Sequence[tuple[str, str]],
    headers: httpx.Headers | Mapping[str, str],
    body: Any,
) -> NextPage | None:
    """How to fetch the page after this one; None when this page was the last."""
    items = items_of(body, spec.items_path)
    if items is not None and not items:
        return None
    if spec.kind == "link":
        if spec.cursor_path:
            target = value_at(body, spec.cursor_path)
        else:
            target = link_next(headers.get("link"))
        if not isinstance(target, str) or not target.strip():
            return None
        try:
            return NextPage(url=str(httpx.URL(url).join(target.strip())))
        except httpx.InvalidURL:
            return None
    if spec.kind == "cursor":
        if isinstance(body, Mapping) and body.get("has_more") is False:
            return None
        path = spec.cursor_path or ""
        if path.startswith(HEADER_CURSOR_PREFIX):
            cursor = headers.get(path.removeprefix(HEADER_CURSOR_PREFIX))
        else:
            cursor = value_at(body, path)
        if cursor in (None, "", False) or isinstance(cursor, dict | list):
            return None
        cursor = str(cursor)
        if cursor == _get(query, spec.cursor_param):
            return None  # the same cursor again: the API is not moving on
        return NextPage(query=with_param(query, spec.cursor_param or "cursor", cursor))
    # offset and page need the page's size to know where the next one starts.
    if items is None:
        return None
    limit = _int(_get(query, spec.limit_param), 0)
    if limit and len(items) < limit:
        return None
    if spec.kind == "offset":
        offset = _int(_get(query, spec.cursor_param), 0)
        return NextPage(
            query=with_param(query, spec.cursor_param or "offset", str(offset + len(items)))
        )
    page = _int(_get(query, spec.page_param), 1)
    return NextPage(query=with_param(query, spec.page_param or "page", str(page + 1)))
