"""Turning a Call into the bytes of a request: URL and query, headers, body.

Everything a user typed is checked here, before anything is sent, so bad input is a 422 with
words rather than an httpx exception: CR/LF in headers, JSON that does not parse, a path that
tries to leave the service's host.
"""

from __future__ import annotations

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
    FORM_INVALID,
    HEADER_LINE_BREAK,
    HEADER_MANAGED,
    HEADER_NAME_INVALID,
    JSON_INVALID,
    JSON_NOT_SERIALIZABLE,
    METHOD_INVALID,
    METHODS,
    PATH_CONTROL,
    PATH_INVALID,
    PATH_OTHER_HOST,
    QUERY_INVALID,
    RAW_INVALID,
    Call,
    CallRejected,
    UploadedFile,
)
from services.templating import TemplateError, render
from traysvc import egress

Pairs = list[tuple[str, str]]

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_HEADER_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_PATH_BAD = re.compile(r"[\s\x00-\x1f\x7f]")
MANAGED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "keep-alive"}
)
QUERY_SAFE = ":/@!$'()*,;"
DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024
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

    @property
    def full_url(self) -> str:
        return join_query(self.url, self.query)

    def with_url(self, url: str) -> Spec:
        """The same request to another URL (a next-page link): its query replaces ours."""
        base, _, query = url.partition("?")
        return replace(self, url=base, query=parse_qsl(query, keep_blank_values=True))

    def with_query(self, query: Pairs) -> Spec:
        return replace(self, query=list(query))

    def to_request(self) -> httpx.Request:
        return httpx.Request(self.method, self.full_url, headers=self.headers, content=self.content)


def encode_query(pairs: Sequence[tuple[str, str]]) -> str:
    """Pairs in order, repeats kept; what must be escaped is, the rest stays readable."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe=QUERY_SAFE)}" for k, v in pairs)


def join_query(url: str, pairs: Sequence[tuple[str, str]]) -> str:
    return f"{url}?{encode_query(pairs)}" if pairs else url


def _pairs(value: Any, message: str, field_name: str) -> Pairs:
    """A mapping or a sequence of [name, value] -> list of string pairs."""
    if value is None:
        return []
    items = value.items() if isinstance(value, Mapping) else value
    out: Pairs = []
    try:
        for item in items:
            name, val = item
            if val is None:
                val = ""
            if not isinstance(name, str) or isinstance(val, dict | list | bytes):
                raise CallRejected(message, field=field_name)
            out.append((name, val if isinstance(val, str) else json.dumps(val)))
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


def _url(call: Call, context: Context) -> tuple[str, Pairs, tuple[str, str, int]]:
    base = _render(context.service.base_url, context, "base_url").rstrip("/")
    try:
        base_url = httpx.URL(base)
        origin = origin_of(base_url)
    except httpx.InvalidURL:
        egress.check_url(base)  # the precise reason ("0177.0.0.1" is refused outright), if any
        raise CallRejected(PATH_INVALID.format(origin=base), field="base_url") from None
    shown_origin = f"{origin[0]}://{base_url.netloc.decode('ascii')}"
    path = call.path or ""
    if not isinstance(path, str) or _PATH_BAD.search(path):
        raise CallRejected(PATH_CONTROL, field="path")
    path = path.split("#", 1)[0]
    path_part, _, path_query = path.partition("?")
    path_part = _render(path_part, context, "path", escape=lambda v: quote(v, safe=""))
    query = parse_qsl(path_query, keep_blank_values=True)
    query += [
        (_render(k, context, "query"), _render(v, context, "query"))
        for k, v in _pairs(call.query, QUERY_INVALID, "query")
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
        final = httpx.URL(url)
    except httpx.InvalidURL:
        raise CallRejected(PATH_INVALID.format(origin=shown_origin), field="path") from None
    if origin_of(final) != origin:  # belt and braces: nothing above may change the host
        raise CallRejected(PATH_OTHER_HOST.format(origin=shown_origin), field="path")
    return url, query, origin


def check_header(name: str, value: str) -> None:
    if not _TOKEN.match(name):
        raise CallRejected(HEADER_NAME_INVALID.format(name=name[:60]), field="headers")
    if _HEADER_VALUE_BAD.search(value):
        raise CallRejected(HEADER_LINE_BREAK.format(name=name), field="headers")
    if name.lower() in MANAGED_HEADERS:
        raise CallRejected(HEADER_MANAGED.format(name=name), field="headers")


def _headers(call: Call, context: Context) -> Pairs:
    defaults = _pairs(context.service.default_headers or {}, QUERY_INVALID, "default_headers")
    given = _pairs(call.headers, HEADER_NAME_INVALID.format(name="?"), "headers")
    given = [(n.strip(), v.strip()) for n, v in given if n.strip()]
    for name, value in given:
        check_header(name, value)
    overridden = {n.lower() for n, _ in given}
    out = [(n, _render(v, context, "default_headers")) for n, v in defaults
           if n.lower() not in overridden]  # fmt: skip
    out += [(n, _render(v, context, "headers")) for n, v in given]
    for name, value in out:
        check_header(name, value)
    return out


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
    for name, value in fields:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted(name)}"\r\n\r\n'
        chunks.append(head.encode() + value.encode() + b"\r\n")
    for upload in files:
        ctype = upload.content_type or "application/octet-stream"
        if _HEADER_VALUE_BAD.search(ctype):
            ctype = "application/octet-stream"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted(upload.field)}"; '
            f'filename="{quoted(upload.filename)}"\r\nContent-Type: {ctype}\r\n\r\n'
        )
        chunks.append(head.encode() + upload.content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _body(call: Call, headers: Pairs) -> tuple[bytes | None, Pairs, str, Pairs]:
    """(content, headers, echo text, form fields) for the call's body type."""
    kind = call.body_type or "none"
    body = call.body
    if kind == "none":
        return None, headers, "", []
    if kind == "json":
        if isinstance(body, bytes):
            body = body.decode("utf-8", errors="replace")
        if isinstance(body, str):
            try:
                json.loads(body)
            except json.JSONDecodeError as exc:
                raise CallRejected(
                    JSON_INVALID.format(error=exc.msg, line=exc.lineno, column=exc.colno),
                    field="body",
                ) from None
            text = body
        else:
            try:
                text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
            except (TypeError, ValueError):
                raise CallRejected(JSON_NOT_SERIALIZABLE, field="body") from None
        return text.encode(), _set_content_type(headers, JSON_TYPE, force=False), text, []
    if kind == "form":
        if isinstance(body, str):
            text = body
        else:
            text = urlencode(_pairs(body or [], FORM_INVALID, "body"))
        return text.encode(), _set_content_type(headers, FORM_TYPE, force=True), text, []
    if kind == "multipart":
        fields = _pairs(body or [], FORM_INVALID, "body")
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
            content, echo = body.encode(), body
        else:
            raise CallRejected(RAW_INVALID, field="body")
        if call.content_type:
            if _HEADER_VALUE_BAD.search(call.content_type):
                raise CallRejected(
                    HEADER_LINE_BREAK.format(name="Content-Type"), field="content_type"
                )
            headers = _set_content_type(headers, call.content_type.strip(), force=True)
        else:
            headers = _set_content_type(headers, TEXT_TYPE, force=False)
        return content, headers, echo, []
    raise CallRejected(BODY_TYPE_INVALID.format(types=", ".join(BODY_TYPES)), field="body_type")


def build_spec(call: Call, context: Context) -> Spec:
    """Validate the call and build its request; CallRejected on bad input."""
    method = (call.method or "").upper().strip()
    if method not in METHODS:
        raise CallRejected(METHOD_INVALID.format(methods=", ".join(METHODS)), field="method")
    if (call.body_type or "none") not in BODY_TYPES:
        raise CallRejected(BODY_TYPE_INVALID.format(types=", ".join(BODY_TYPES)), field="body_type")
    url, query, origin = _url(call, context)
    headers = _headers(call, context)
    content, headers, echo, fields = _body(call, headers)
    limit = int(getattr(settings, "HTTPCLIENT_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES))
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
    )
