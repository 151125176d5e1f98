"""What goes into a call and what comes out of it, and the words of every refusal."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.models import Authentication, Service
    from workspaces.models import Membership, Organization

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
BODY_TYPES = ("none", "json", "form", "multipart", "raw")

# Error kinds besides egress's (refused, timeout, connect, tls, protocol, ...).
KIND_NOT_FOUND = "not_found"
KIND_INVALID = "invalid"
KIND_AUTH = "auth"
KIND_PAGINATION = "pagination"
# How the JSON API answers each failed call (an upstream status is never an error here).
HTTP_STATUS_FOR_KIND = {
    KIND_NOT_FOUND: 404,
    KIND_INVALID: 422,
    KIND_AUTH: 422,
    "refused": 422,
    "invalid_url": 422,
    "redirect_refused": 422,  # a 307/308 would resend the body to another origin
    "timeout": 504,
}
UPSTREAM_FAILED_STATUS = 502

# User-facing messages (tests assert these words).
SERVICE_NOT_FOUND = "Service not found."
AUTHENTICATION_NOT_FOUND = "Authentication not found."
AUTHENTICATION_OTHER_SERVICE = (
    "This authentication belongs to another service; pick one made for {service}."
)
AUTHENTICATION_REQUIRED = "This service needs an authentication: pick one."
METHOD_INVALID = "Choose an HTTP method: {methods}."
BODY_TYPE_INVALID = "Choose a body type: {types}."
PATH_INVALID = "The path must be relative to the base URL (like /users), or a URL on {origin}."
PATH_OTHER_HOST = "An absolute URL must stay on the service's own host, {origin}."
PATH_CONTROL = "The path must not contain spaces, line breaks or control characters."
HEADER_NAME_INVALID = "Header name {name!r} is not valid: use letters, digits and -_!#$%&'*+.^`|~."
HEADER_LINE_BREAK = "Header {name} contains a line break (CR or LF) or a control character."
HEADER_MANAGED = "Header {name} is set by the HTTP client; remove it."
HEADER_VALUE_NOT_ASCII = (
    "Header {name} contains a character outside printable ASCII; a header value must be "
    "ASCII text (percent-encode or base64 anything else)."
)
HEADERS_INVALID = "Headers must be name/value pairs of text."
TEXT_NOT_UNICODE = (
    "{what} contains text that is not valid Unicode (a lone surrogate such as \\ud800)."
)
FILES_NEED_MULTIPART = "Files are sent only with a multipart body: set body_type to multipart."
QUERY_INVALID = "Query parameters must be name/value pairs of text."
JSON_INVALID = "The body is not valid JSON: {error} (line {line}, column {column})."
JSON_NOT_SERIALIZABLE = "The body cannot be sent as JSON."
FORM_INVALID = "A form body must be name/value pairs of text."
RAW_INVALID = "A raw body must be text."
BODY_TOO_LARGE = "The request body is larger than the {limit} MB limit."
TIMEOUT_INVALID = "The timeout must be a positive number of seconds."
NEXT_PAGE_OTHER_HOST = (
    "Stopped paging: the next-page link leaves the service's host ({origin}), and the "
    "credential is not sent elsewhere."
)
PAGES_CAPPED = "Stopped paging after {pages} pages (the limit)."
PAGE_BYTES_CAPPED = "Stopped paging after {megabytes} MB of pages (the limit)."
REFRESH_FAILED = "The access token was refused and refreshing it failed: {error}"
AUTH_NOT_ENCODABLE = (
    "The credential cannot be sent: the service's auth settings or the credential hold "
    "characters an HTTP header cannot carry (use ASCII)."
)


class CallRejected(Exception):
    """Bad input found before anything was sent: a 422 (or 404) with words for the user."""

    def __init__(self, message: str, *, field: str = "", kind: str = KIND_INVALID) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.kind = kind


@dataclass(frozen=True)
class UploadedFile:
    """One file of a multipart body."""

    field: str
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass
class Call:
    """One request to a service, as the console, the API and the health checks describe it.

    service and authentication are model instances (already access-checked by the caller)
    or public ids (the runner looks them up inside the member's organization). membership is
    None only for system callers (health checks), which must then pass instances.
    """

    membership: Membership | None
    service: Service | uuid.UUID | str
    authentication: Authentication | uuid.UUID | str | None = None
    method: str = "GET"
    path: str = "/"
    query: Sequence[Sequence[str]] | Mapping[str, str] = ()
    headers: Sequence[Sequence[str]] | Mapping[str, str] = ()
    body_type: str = "none"
    body: Any = None
    files: Sequence[UploadedFile] = ()
    content_type: str = ""
    timeout: float | None = None
    follow_redirects: bool = True
    all_pages: bool = False
    source: str = "code"
    organization: Organization | None = None


@dataclass(frozen=True)
class Retry:
    """One attempt that was retried: what it got and how long the runner waited after it."""

    status: int
    waited_ms: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "waited_ms": round(self.waited_ms, 1), "reason": self.reason}


@dataclass(frozen=True)
class Page:
    """One fetched page of an all-pages call."""

    url: str
    status: int
    bytes: int
    items: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status, "bytes": self.bytes, "items": self.items}


@dataclass
class RequestEcho:
    """The request as it went out, redacted."""

    method: str
    url: str
    headers: list[list[str]] = field(default_factory=list)
    body: str = ""
    body_type: str = "none"


@dataclass
class Result:
    """What a call did. Everything here is redacted; `error` is empty when a response came."""

    call_id: uuid.UUID | None = None
    status: int | None = None
    reason: str = ""
    headers: list[list[str]] = field(default_factory=list)
    body: Any = None
    body_base64: str | None = None
    body_kind: str = "empty"  # json | text | binary | empty
    body_bytes: int = 0
    truncated: bool = False
    elapsed_ms: float = 0.0
    ttfb_ms: float | None = None
    url: str = ""
    http_version: str = ""
    attempts: int = 0
    retries: list[Retry] = field(default_factory=list)
    redirects: list[str] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    request: RequestEcho | None = None
    curl: str = ""
    error: str = ""
    error_kind: str = ""
    error_field: str = ""

    @property
    def ok(self) -> bool:
        """A response came back (whatever its status)."""
        return not self.error

    @property
    def http_status(self) -> int:
        """The status the JSON API answers with for this result."""
        if not self.error:
            return 200
        return HTTP_STATUS_FOR_KIND.get(self.error_kind, UPSTREAM_FAILED_STATUS)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for n, v in self.headers if n.lower() == lowered), None)
