"""A response body as a reader wants it: parsed JSON, text in its charset, or base64."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx

TEXT_TYPES = (
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "application/yaml",
    "application/x-yaml",
    "application/graphql",
    "application/soap+xml",
    "application/x-ndjson",
)


# A lone surrogate ("\ud800" in JSON) parses into a str that cannot be encoded as UTF-8:
# no database stores it and no page renders it.
# NUL too: PostgreSQL stores it in neither text nor jsonb.
_SURROGATE = re.compile("[\ud800-\udfff\x00]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def clean(value: Any) -> Any:
    """Strings, in lists and dicts too, with lone surrogates and NULs replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list | tuple):
        return [clean(item) for item in value]
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    return value


def media_type(headers: httpx.Headers) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def charset(headers: httpx.Headers) -> str | None:
    for part in headers.get("content-type", "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "charset" and value:
            return value.strip("\"' ")
    return None


def is_json_type(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def is_text_type(media: str) -> bool:
    return media.startswith("text/") or media in TEXT_TYPES or media.endswith("+xml")


def _text(content: bytes, encoding: str | None) -> str | None:
    try:
        return content.decode(encoding or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return None


def decode_body(content: bytes, headers: httpx.Headers) -> tuple[str, Any, str | None]:
    """(kind, body, body_base64): kind is json | text | binary | empty."""
    if not content:
        return "empty", None, None
    media = media_type(headers)
    encoding = charset(headers)
    if is_json_type(media):
        text = _text(content, encoding)
        if text is not None:
            try:
                parsed = json.loads(text)
            except ValueError:
                return "text", text, None
            if _SURROGATE_ESCAPE.search(content):  # a valid pair is joined by json: rare, so
                parsed = clean(parsed)  # the whole document is walked only when it may need it
            return "json", parsed, None
    if is_text_type(media):
        text = _text(content, encoding)
        if text is None:
            text = content.decode(encoding or "utf-8", errors="replace") if encoding else None
        if text is not None:
            return "text", text, None
    if not media:
        text = _text(content, None)
        if text is not None and "\x00" not in text:
            return "text", text, None
    return "binary", None, base64.b64encode(content).decode("ascii")


def excerpt(kind: str, body: Any, body_base64: str | None, *, limit: int) -> tuple[str, bool]:
    """What the CallLog keeps of a body, capped at `limit` characters; (text, was_cut)."""
    if kind == "json":
        text = json.dumps(body, ensure_ascii=False, indent=None)
    elif kind == "text":
        text = body or ""
    elif kind == "binary":
        text = f"(binary, base64) {body_base64 or ''}"
    else:
        return "", False
    if len(text) > limit:
        return text[:limit], True
    return text, False
