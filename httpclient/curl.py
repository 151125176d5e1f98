""" "Copy as curl": the call as a shell command, with secrets replaced by placeholders.

The command reproduces what the runner sent (method, final query, headers, body, redirect and
timeout options) except that each credential reads as <TOKEN>, <PASSWORD>, ... so the text
can be pasted into a ticket or a chat without leaking anything.
"""

from __future__ import annotations

import base64
import binascii
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from httpclient.redaction import Redactor

MAX_INLINE_BODY = 64 * 1024
BINARY_BODY_FILE = "request-body.bin"
SKIPPED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True)
class CurlFile:
    field: str
    filename: str
    content_type: str


@dataclass(frozen=True)
class CurlRequest:
    """What the runner sent, before redaction (the builder masks while writing)."""

    method: str
    url: str
    headers: Sequence[tuple[str, str]] = ()
    body_type: str = "none"
    body: bytes | None = None
    form_fields: Sequence[tuple[str, str]] = ()
    files: Sequence[CurlFile] = field(default_factory=tuple)
    follow_redirects: bool = False
    max_redirects: int = 5
    timeout: float | None = None
    verify: bool = True
    digest_username: str | None = None
    digest_password: str | None = None


def _basic_user(value: str, redactor: Redactor) -> str | None:
    """`user:pass` of a Basic header, each part masked; None when it is not Basic."""
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return f"{_mask(user, redactor)}:{_mask(password, redactor)}"


def _mask(value: str, redactor: Redactor) -> str:
    if not value:
        return value
    return redactor.label_of(value) or redactor.text(value)


def to_curl(request: CurlRequest, redactor: Redactor) -> str:
    """The shell command for this request; `redactor` should be in placeholder mode."""
    redactor = redactor if redactor.placeholders else redactor.as_placeholders()
    method = request.method.upper()
    parts: list[str] = ["curl"]
    has_body = bool(request.body) or request.body_type == "multipart"
    if method == "HEAD":
        parts.append("--head")
    elif method != "GET" or has_body:
        parts.append(f"-X {method}")
    parts.append(shlex.quote(redactor.url(request.url)))
    for name, value in request.headers:
        lowered = name.lower()
        if lowered in SKIPPED_HEADERS:
            continue
        if request.body_type == "multipart" and lowered == "content-type":
            continue  # curl writes its own boundary
        if lowered == "authorization":
            user = _basic_user(value, redactor)
            if user is not None:
                parts.append(f"-u {shlex.quote(user)}")
                continue
        shown = redactor.header_value(name, value)
        parts.append(f"-H {shlex.quote(f'{redactor.text(name)}: {shown}')}")
    if request.digest_username is not None:
        user = f"{_mask(request.digest_username, redactor)}:"
        user += _mask(request.digest_password or "", redactor)
        parts.append(f"--digest -u {shlex.quote(user)}")
    if request.body_type == "multipart":
        for name, value in request.form_fields:
            parts.append(f"--form-string {shlex.quote(f'{name}={redactor.text(value)}')}")
        for upload in request.files:
            spec = f"{upload.field}=@{upload.filename}"
            if upload.content_type:
                spec += f";type={upload.content_type}"
            parts.append(f"-F {shlex.quote(spec)}")
    elif request.body:
        text = _inline_text(request.body)
        if text is None:
            parts.append(f"--data-binary @{BINARY_BODY_FILE}")
        else:
            parts.append(f"--data-raw {shlex.quote(redactor.text(text))}")
    if request.follow_redirects:
        parts.append(f"-L --max-redirs {request.max_redirects}")
    if request.timeout:
        parts.append(f"--max-time {request.timeout:g}")
    if not request.verify:
        parts.append("--insecure")
    return " \\\n  ".join(parts)


def _inline_text(body: bytes) -> str | None:
    if len(body) > MAX_INLINE_BODY:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None
