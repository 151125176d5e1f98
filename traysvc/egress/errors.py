"""The one exception type every outbound failure becomes, so callers handle a single thing."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx

KIND_REFUSED = "refused"
KIND_TIMEOUT = "timeout"
KIND_CONNECT = "connect"
KIND_TLS = "tls"
KIND_PROTOCOL = "protocol"
KIND_TOO_MANY_REDIRECTS = "too_many_redirects"
KIND_INVALID_URL = "invalid_url"
KIND_REDIRECT_REFUSED = "redirect_refused"
KINDS = frozenset(
    {
        KIND_REDIRECT_REFUSED,
        KIND_REFUSED,
        KIND_TIMEOUT,
        KIND_CONNECT,
        KIND_TLS,
        KIND_PROTOCOL,
        KIND_TOO_MANY_REDIRECTS,
        KIND_INVALID_URL,
    }
)

UNKNOWN_KIND = "unknown egress error kind {kind!r}"
TIMED_OUT = "timed out after {seconds:g} s: {url}"
CONNECT_FAILED = "could not connect to {url}: {detail}"
CONNECTION_LOST = "the connection to {url} was lost: {detail}"
TLS_FAILED = "TLS with {url} failed: {detail}"
PROTOCOL_FAILED = "the server at {url} broke the HTTP protocol: {detail}"
REQUEST_NOT_SENDABLE = (
    "the request to {url} could not be sent: a header name or value is not allowed in HTTP"
)
NOT_REQUESTABLE = "invalid URL: {url} cannot be requested"
REQUEST_FAILED = "the request to {url} failed ({error})"


class EgressError(Exception):
    """An outbound request failed. The message is safe to show a user: it never holds a
    query string or a header, only scheme://host:port/path."""

    def __init__(self, message: str, kind: str, *, url: str = "") -> None:
        if kind not in KINDS:
            raise ValueError(UNKNOWN_KIND.format(kind=kind))
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.url = url

    def __reduce__(self) -> tuple:
        # Celery pickles exceptions; keep kind and url across the trip.
        return (self.__class__, (self.message, self.kind), {"url": self.url})

    def __str__(self) -> str:
        return self.message


class DestinationRefused(EgressError):
    """The SSRF guard (or the static URL check) will not send to this destination.

    kind is "refused", or "invalid_url" when the URL itself is malformed, so a form that
    validates a base URL catches this one class."""

    def __init__(self, message: str, kind: str = KIND_REFUSED, *, url: str = "") -> None:
        super().__init__(message, kind, url=url)


def safe_url(url: httpx.URL | str) -> str:
    """scheme://host:port/path of a URL: what error messages and logs may show."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "(unparseable URL)"
    host = parsed.host
    if ":" in host:
        host = f"[{host}]"
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    netloc = f"{host}:{port}" if port else host
    return f"{parsed.scheme}://{netloc}{parsed.path}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _os_detail(exc: BaseException) -> str:
    """The operating system's words (\"connection refused\"), else the innermost message."""
    errors = [item for item in _chain(exc) if isinstance(item, OSError)]
    if errors and errors[-1].strerror:
        return errors[-1].strerror.lower()
    return (str(list(_chain(exc))[-1]) or type(exc).__name__)[:200]


def map_transport_error(exc: Exception, url: httpx.URL, seconds: float) -> EgressError:
    """An httpx exception as an EgressError whose message names only scheme://host:port/path.

    A local protocol error gets fixed words: h11's own message may quote the header value."""
    where = safe_url(url)

    def error(template: str, kind: str, **values: str) -> EgressError:
        return EgressError(template.format(url=where, **values), kind, url=where)

    if isinstance(exc, httpx.TimeoutException):
        return EgressError(TIMED_OUT.format(seconds=seconds, url=where), KIND_TIMEOUT, url=where)
    tls = next((item for item in _chain(exc) if isinstance(item, ssl.SSLError)), None)
    if tls is not None:
        detail = getattr(tls, "verify_message", None) or tls.reason or str(tls)
        return error(TLS_FAILED, KIND_TLS, detail=str(detail).lower())
    if isinstance(exc, httpx.ConnectError):
        return error(CONNECT_FAILED, KIND_CONNECT, detail=_os_detail(exc))
    if isinstance(exc, httpx.NetworkError):
        return error(CONNECTION_LOST, KIND_CONNECT, detail=_os_detail(exc))
    if isinstance(exc, httpx.LocalProtocolError):
        return error(REQUEST_NOT_SENDABLE, KIND_PROTOCOL)
    if isinstance(exc, httpx.ProtocolError):
        return error(PROTOCOL_FAILED, KIND_PROTOCOL, detail=(str(exc) or type(exc).__name__)[:200])
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return error(NOT_REQUESTABLE, KIND_INVALID_URL)
    return error(REQUEST_FAILED, KIND_PROTOCOL, error=type(exc).__name__)
