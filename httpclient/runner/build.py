"""Turning a Call into the bytes of a request: URL and query, headers, body.

Everything a user typed is checked here, before anything is sent, so bad input is a 422 with
words rather than an httpx exception: CR/LF in headers, JSON that does not parse, a path that
tries to leave the service's host.
"""

from __future__ import annotations

import functools
import json
import re
import secrets as pysecrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx
from django.conf import settings

from httpclient.runner.context import Context, origin_of, sandbox_origins
from httpclient.runner.types import (
    BODY_TOO_LARGE,
    BODY_TYPE_INVALID,
    BODY_TYPES,
    FILES_NEED_MULTIPART,
    FORM_INVALID,
    HEADER_LINE_BREAK,
    HEADER_MANAGED,
    HEADER_NAME_INVALID,
    HEADER_VALUE_NOT_ASCII,
    HEADERS_INVALID,
    JSON_INVALID,
    JSON_NOT_SERIALIZABLE,
    METHOD_INVALID,
    METHODS,
    PATH_CONTROL,
    PATH_INVALID,
    PATH_OTHER_HOST,
    QUERY_INVALID,
    RAW_INVALID,
    TEXT_NOT_UNICODE,
    Call,
    CallRejected,
    UploadedFile,
)
from services.templating import TemplateError, render
from traysvc import egress

Pairs = list[tuple[str, str]]

# RFC 9110 field names are tokens; values here are visible ASCII, space and tab (httpx encodes
# header strings as ASCII: anything else would fail inside it instead of here, with words).
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_HEADER_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEADER_VALUE_OK = re.compile(r"^[\t\x20-\x7e]*$")
_PATH_BAD = re.compile(r"[\s\x00-\x1f\x7f]")
# A lone surrogate (JSON "\ud800") is a Python str but not Unicode text: it cannot be encoded.
_SURROGATE = re.compile("[\ud800-\udfff]")
MANAGED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "keep-alive"}
)
QUERY_SAFE = ":/@!$'()*,;"
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
TEXT_TYPE = "text/plain; charset=utf-8"


@dataclass
class Spec:
    """A request ready to be turned into an httpx.Request (once per attempt and per page)."""

    method: str
    url: str  # scheme://host/path, no query
    query: Pairs
    headers: Pairs
    content: bytes | None
    body_type: str
    body_echo: str
    form_fields: Pairs = field(default_factory=list)
    files: list[UploadedFile] = field(default_factory=list)
    origin: tuple[str, str, int] = ("", "", 0)
    # full_url parsed, once: build_spec parses it to check it, every attempt reuses it.
    parsed: httpx.URL | None = field(default=None, compare=False, repr=False)

    @property
    def full_url(self) -> str:
        return join_query(self.url, self.query)

    def with_url(self, url: str) -> Spec:
        """The same request to another URL (a next-page link): its query replaces ours."""
        base, _, query = url.partition("?")
        return replace(self, url=base, query=parse_qsl(query, keep_blank_values=True), parsed=None)

    def with_query(self, query: Pairs) -> Spec:
        return replace(self, query=list(query), parsed=None)

    def to_request(self) -> httpx.Request:
        if self.parsed is None:
            self.parsed = httpx.URL(self.full_url)
        return httpx.Request(self.method, self.parsed, headers=self.headers, content=self.content)


def encode_query(pairs: Sequence[tuple[str, str]]) -> str:
    """Pairs in order, repeats kept; what must be escaped is, the rest stays readable."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe=QUERY_SAFE)}" for k, v in pairs)


def join_query(url: str, pairs: Sequence[tuple[str, str]]) -> str:
    return f"{url}?{encode_query(pairs)}" if pairs else url


def shown(text: str, limit: int = 60) -> str:
    """User text as an error message may quote it: cut short, lone surrogates replaced."""
    return _SURROGATE.sub("\ufffd", text[:limit])


def check_text(text: str, what: str, field_name: str) -> str:
    """Text that will be encoded as UTF-8: CallRejected when it cannot be."""
    if _SURROGATE.search(text):
        raise CallRejected(TEXT_NOT_UNICODE.format(what=what), field=field_name)
    return text


def _encode(text: str, what: str, field_name: str) -> bytes:
    return check_text(text, what, field_name).encode("utf-8")


def _pairs(value: Any, message: str, field_name: str, what: str = "A value") -> Pairs:
    """A mapping or a sequence of [name, value] -> list of string pairs (valid Unicode)."""
    if value is None:
        return []
    items = value.items() if isinstance(value, Mapping) else value
    out: Pairs = []
    try:
        for item in items:
            if isinstance(item, str | bytes):
                raise CallRejected(message, field=field_name)
            name, val = item
            if val is None:
                val = ""
            if not isinstance(name, str) or isinstance(val, dict | list | bytes):
                raise CallRejected(message, field=field_name)
            if not isinstance(val, str):
                val = json.dumps(val)
            out.append((check_text(name, what, field_name), check_text(val, what, field_name)))
    except (TypeError, ValueError):
        raise CallRejected(message, field=field_name) from None
    return out


def _render(text: str, context: Context, field_name: str, escape: Any = None) -> str:
    try:
        return render(
            text, auth=context.template_auth, service=context.template_service, escape=escape
        )
    except TemplateError as exc:
        raise CallRejected(exc.message, field=field_name) from None


@functools.lru_cache(maxsize=256)
def _base(base: str) -> tuple[tuple[str, str, int], str]:
    """A base URL's origin and how to show it; raises httpx.InvalidURL. Cached: a service's
    base URL is the same text on every call (a templated one varies by authentication)."""
    base_url = httpx.URL(base)
    origin = origin_of(base_url)
    return origin, f"{origin[0]}://{base_url.netloc.decode('ascii')}"


def _url(call: Call, context: Context) -> tuple[str, Pairs, tuple[str, str, int], httpx.URL]:
    """(URL without query, query pairs, origin, the whole URL parsed)."""
    base = _render(context.service.base_url, context, "base_url").rstrip("/")
    try:
        origin, shown_origin = _base(base)
    except httpx.InvalidURL:
        egress.check_url(base)  # the precise reason ("0177.0.0.1" is refused outright), if any
        raise CallRejected(PATH_INVALID.format(origin=base), field="base_url") from None
    path = call.path or ""
    if not isinstance(path, str) or _PATH_BAD.search(path):
        raise CallRejected(PATH_CONTROL, field="path")
    check_text(path, "The path", "path")
    path = path.split("#", 1)[0]
    path_part, _, path_query = path.partition("?")
    path_part = _render(path_part, context, "path", escape=lambda v: quote(v, safe=""))
    query = parse_qsl(path_query, keep_blank_values=True)
    query += [
        (_render(k, context, "query"), _render(v, context, "query"))
        for k, v in _pairs(call.query, QUERY_INVALID, "query", "A query parameter")
    ]
    if "://" in path_part:
        try:
            target = httpx.URL(path_part)
        except httpx.InvalidURL:
            raise CallRejected(PATH_INVALID.format(origin=shown_origin), field="path") from None
        if origin_of(target) != origin or target.userinfo:
            raise CallRejected(PATH_OTHER_HOST.format(origin=shown_origin), field="path")
        url = path_part
    elif path_part:
        url = f"{base}/{path_part.lstrip('/')}"
    else:
        url = base
    try:
        final = httpx.URL(join_query(url, query))
    except httpx.InvalidURL:
        raise CallRejected(PATH_INVALID.format(origin=shown_origin), field="path") from None
    if origin_of(final) != origin:  # belt and braces: nothing above may change the host
        raise CallRejected(PATH_OTHER_HOST.format(origin=shown_origin), field="path")
    return url, query, origin, final


def check_header_value(name: str, value: str, field_name: str = "headers") -> None:
    """CR, LF and control characters, then anything httpx could not encode as ASCII."""
    if _HEADER_VALUE_BAD.search(value):
        raise CallRejected(HEADER_LINE_BREAK.format(name=name), field=field_name)
    if not _HEADER_VALUE_OK.match(value):
        raise CallRejected(HEADER_VALUE_NOT_ASCII.format(name=name), field=field_name)


def check_header(name: str, value: str, field_name: str = "headers") -> None:
    if not _TOKEN.match(name):
        raise CallRejected(HEADER_NAME_INVALID.format(name=shown(name)), field=field_name)
    check_header_value(name, value, field_name)
    if name.lower() in MANAGED_HEADERS:
        raise CallRejected(HEADER_MANAGED.format(name=name), field=field_name)


def _headers(call: Call, context: Context) -> Pairs:
    """The service's default headers, then the call's (which override them by name)."""
    defaults = _pairs(context.service.default_headers or {}, HEADERS_INVALID, "default_headers")
    given = _pairs(call.headers, HEADERS_INVALID, "headers")
    given = [(n.strip(), v.strip()) for n, v in given if n.strip()]
    for name, value in given:
        check_header(name, value)
    overridden = {n.lower() for n, _ in given}
    kept = [(n, _render(v, context, "default_headers")) for n, v in defaults
            if n.lower() not in overridden]  # fmt: skip
    for name, value in kept:
        check_header(name, value, "default_headers")
    rendered = [(n, _render(v, context, "headers")) for n, v in given]
    for name, value in rendered:
        check_header(name, value)
    return kept + rendered


def _set_content_type(headers: Pairs, value: str, *, force: bool) -> Pairs:
    present = any(n.lower() == "content-type" for n, _ in headers)
    if present and not force:
        return headers
    return [(n, v) for n, v in headers if n.lower() != "content-type"] + [("Content-Type", value)]


def _multipart(fields: Pairs, files: Sequence[UploadedFile]) -> tuple[bytes, str]:
    """multipart/form-data (RFC 7578), even with no files (httpx would send urlencoded)."""
    boundary = pysecrets.token_hex(16)

    def quoted(text: str) -> str:
        return (
            text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        )

    chunks: list[bytes] = []
    for name, value in fields:  # valid Unicode: _pairs checked them
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted(name)}"\r\n\r\n'
        chunks.append(head.encode() + value.encode() + b"\r\n")
    for upload in files:
        ctype = upload.content_type or "application/octet-stream"
        if not _HEADER_VALUE_OK.match(ctype) or _HEADER_VALUE_BAD.search(ctype):
            ctype = "application/octet-stream"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted(upload.field)}"; '
            f'filename="{quoted(upload.filename)}"\r\nContent-Type: {ctype}\r\n\r\n'
        )
        chunks.append(_encode(head, "A file's field or file name", "files") + upload.content
                      + b"\r\n")  # fmt: skip
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _reject_constant(name: str) -> Any:
    """json.loads accepts NaN and Infinity, which are not JSON: the upstream would choke."""
    raise ValueError(name)


def _json_body(body: Any) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        check_text(body, "The body", "body")
        try:
            json.loads(body, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise CallRejected(
                JSON_INVALID.format(error=exc.msg, line=exc.lineno, column=exc.colno),
                field="body",
            ) from None
        except ValueError:
            raise CallRejected(JSON_NOT_SERIALIZABLE, field="body") from None
        return body
    try:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise CallRejected(JSON_NOT_SERIALIZABLE, field="body") from None
    return check_text(text, "The body", "body")


def _raw_content_type(call: Call, headers: Pairs) -> Pairs:
    if not isinstance(call.content_type, str):
        raise CallRejected(HEADER_VALUE_NOT_ASCII.format(name="Content-Type"), field="content_type")
    value = call.content_type.strip()
    if not value:
        return _set_content_type(headers, TEXT_TYPE, force=False)
    check_header_value("Content-Type", value, "content_type")
    return _set_content_type(headers, value, force=True)


def _body(call: Call, headers: Pairs) -> tuple[bytes | None, Pairs, str, Pairs]:
    """(content, headers, echo text, form fields) for the call's body type."""
    kind = call.body_type or "none"
    body = call.body
    if call.files and kind != "multipart":
        raise CallRejected(FILES_NEED_MULTIPART, field="files")
    if kind == "none":
        return None, headers, "", []
    if kind == "json":
        text = _json_body(body)
        return text.encode(), _set_content_type(headers, JSON_TYPE, force=False), text, []
    if kind == "form":
        if isinstance(body, str):
            text = check_text(body, "The body", "body")
        else:
            text = urlencode(_pairs(body or [], FORM_INVALID, "body", "The body"))
        return text.encode(), _set_content_type(headers, FORM_TYPE, force=True), text, []
    if kind == "multipart":
        fields = _pairs(body or [], FORM_INVALID, "body", "The body")
        content, ctype = _multipart(fields, call.files)
        echo = "\n".join(
            [f"{n}={v}" for n, v in fields]
            + [f"{f.field}=@{f.filename} ({len(f.content)} bytes)" for f in call.files]
        )
        return content, _set_content_type(headers, ctype, force=True), echo, fields
    if kind == "raw":
        if body is None:
            body = ""
        if isinstance(body, bytes):
            content, echo = body, body.decode("utf-8", errors="replace")
        elif isinstance(body, str):
            content, echo = _encode(body, "The body", "body"), body
        else:
            raise CallRejected(RAW_INVALID, field="body")
        return content, _raw_content_type(call, headers), echo, []
    raise CallRejected(BODY_TYPE_INVALID.format(types=", ".join(BODY_TYPES)), field="body_type")


def build_spec(call: Call, context: Context) -> Spec:
    """Validate the call and build its request; CallRejected on bad input."""
    method = (call.method or "").upper().strip()
    if method not in METHODS:
        raise CallRejected(METHOD_INVALID.format(methods=", ".join(METHODS)), field="method")
    if (call.body_type or "none") not in BODY_TYPES:
        raise CallRejected(BODY_TYPE_INVALID.format(types=", ".join(BODY_TYPES)), field="body_type")
    url, query, origin, parsed = _url(call, context)
    headers = _headers(call, context)
    content, headers, echo, fields = _body(call, headers)
    limit = int(settings.HTTPCLIENT_MAX_REQUEST_BYTES)
    if content is not None and len(content) > limit:
        raise CallRejected(BODY_TOO_LARGE.format(limit=limit // (1024 * 1024)), field="body")
    context.allow_origins = sandbox_origins(origin)
    return Spec(
        method=method,
        url=url,
        query=query,
        headers=headers,
        content=content,
        body_type=call.body_type or "none",
        body_echo=echo,
        form_fields=fields,
        files=list(call.files),
        origin=origin,
        parsed=parsed,
    )
