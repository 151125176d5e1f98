"""The pooled outbound client and `send`, the one way the app makes an HTTP request.

Clients are pooled per policy: (verify, the allowed networks, the exemptions). A pooled
keep-alive connection was checked when it was opened, under that policy only, so a request
under another policy must never reuse it; a key per policy makes that structural. Within a
policy, requests that match an exemption (the sandbox's /sandbox/ paths on the app's own
origin) go through a transport of their own: a connection opened unchecked for them is never
reused by a request to another path of the same origin, which must pass the guard.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import importlib.util
import json as jsonlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from traysvc.egress.body import ACCEPT_ENCODING, Body, BodyDeadline, BodyDecodeError, read_body
from traysvc.egress.errors import (
    KIND_INVALID_URL,
    KIND_PROTOCOL,
    KIND_REDIRECT_REFUSED,
    KIND_TIMEOUT,
    KIND_TOO_MANY_REDIRECTS,
    REQUEST_NOT_SENDABLE,
    TIMED_OUT,
    DestinationRefused,
    EgressError,
    map_transport_error,
    safe_url,
)
from traysvc.egress.guard import (
    Exemption,
    GuardedBackend,
    IPNetwork,
    Origin,
    allowed_networks,
    check_literal_host,
    check_url,
    exempt_connection,
    is_exempt,
    normalise_origins,
    origin_of,
    read_setting,
    resolve_checked,
)

USER_AGENT = "traysvc"
DEFAULT_HEADERS = {
    "Accept": "*/*",
    "Accept-Encoding": ACCEPT_ENCODING,
    "Connection": "keep-alive",
    "User-Agent": USER_AGENT,
}
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0)
MAX_POOLED_CLIENTS = 16
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
BODY_KEEPING_REDIRECTS = frozenset({307, 308})  # the client must resend method and body
# Dropped once a redirect leaves the first origin (Host: a caller's override names that origin).
ALWAYS_STRIP_ON_REDIRECT = frozenset({"authorization", "proxy-authorization", "cookie", "host"})
_BODY_HEADERS = ("content-type", "content-length", "transfer-encoding", "content-encoding")

TIMEOUT_NOT_POSITIVE = "timeout must be a positive number of seconds"
BODY_NOT_DECODABLE = "the response from {url} is not valid {encoding}"
TOO_MANY_REDIRECTS = "stopped after {count} redirects (the limit) at {url}"
REDIRECT_LOOP = "redirect loop: {url} was already requested"
BAD_LOCATION = "invalid URL: the redirect from {url} has a Location that is not a valid URL"
REDIRECT_BODY_REFUSED = (
    "refused to resend the request body to another origin ({status} to {url}); "
    "call that URL directly if it is meant"
)


@dataclass(frozen=True)
class EgressResponse:
    """What came back. url is the final URL (with its query: redact before logging);
    redirects are the URLs that answered with a redirect, in order."""

    status_code: int
    reason: str
    headers: httpx.Headers
    content: bytes
    truncated: bool
    url: str
    http_version: str
    elapsed_ms: float
    ttfb_ms: float
    redirects: list[str] = field(default_factory=list)
    request_headers: httpx.Headers = field(default_factory=httpx.Headers)
    downloaded_bytes: int = 0  # bytes off the wire, before decoding

    @property
    def text(self) -> str:
        content_type = self.headers.get("content-type", "")
        charset = "utf-8"
        for part in content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip("\"' ")
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """The pooled client serves every tenant: it must never keep or replay a cookie."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a pool whose network backend is the SSRF guard.

    exempt=True skips the range checks for every connection it opens: send() hands it only
    requests that match the caller's exemptions, so its pool holds only such connections."""

    def __init__(
        self,
        *,
        verify: bool = True,
        networks: Iterable[IPNetwork] = (),
        exempt: bool = False,
        http2: bool = False,
    ) -> None:
        # HTTPTransport.__init__ builds its pool with no way to pass a network backend, so the
        # same pool is built here with ours; handle_request and close are inherited.
        self._exempt = exempt
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=LIMITS.max_connections,
            max_keepalive_connections=LIMITS.max_keepalive_connections,
            keepalive_expiry=LIMITS.keepalive_expiry,
            http1=True,
            http2=http2,
            network_backend=GuardedBackend(networks),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        token = exempt_connection.set(self._exempt)
        try:
            return super().handle_request(request)
        finally:
            exempt_connection.reset(token)


@dataclass(frozen=True)
class _Pooled:
    client: httpx.Client
    transport: GuardedTransport
    exempt_transport: GuardedTransport | None  # only when the policy has exemptions

    def transport_for(self, exempt: bool) -> GuardedTransport:
        if exempt and self.exempt_transport is not None:
            return self.exempt_transport
        return self.transport


_pooled: OrderedDict[tuple, _Pooled] = OrderedDict()
_pooled_lock = threading.Lock()


def _pooled_for(
    verify: bool, networks: tuple[IPNetwork, ...], exemptions: frozenset[Exemption]
) -> _Pooled:
    key = (verify, networks, exemptions)
    with _pooled_lock:
        pooled = _pooled.get(key)
        if pooled is not None:
            _pooled.move_to_end(key)
            return pooled
        http2 = importlib.util.find_spec("h2") is not None
        transport = GuardedTransport(verify=verify, networks=networks, http2=http2)
        exempt_transport = None
        if exemptions:
            exempt_transport = GuardedTransport(
                verify=verify, networks=networks, exempt=True, http2=http2
            )
        client = httpx.Client(
            transport=transport,
            follow_redirects=False,
            trust_env=False,  # no proxy or .netrc from the environment
            cookies=http.cookiejar.CookieJar(policy=_NoCookies()),
            headers=DEFAULT_HEADERS,
            timeout=_timeout_budget(None),
        )
        pooled = _pooled[key] = _Pooled(client, transport, exempt_transport)
        while len(_pooled) > MAX_POOLED_CLIENTS:
            # Dropped, not closed: another thread may be mid-request on it; GC closes it.
            _pooled.popitem(last=False)
        return pooled


def get_client(verify: bool = True) -> httpx.Client:
    """The pooled client for the current HTTPCLIENT_ALLOW_NETWORKS. Its transport carries the
    guard, but prefer send(): it adds the URL checks, redirect re-checks and size cap."""
    return _pooled_for(verify, allowed_networks(), frozenset()).client


def close_clients() -> None:
    """Close every pooled client (tests, worker shutdown); the next call makes new ones."""
    with _pooled_lock:
        pooled = list(_pooled.values())
        _pooled.clear()
    for item in pooled:
        item.client.close()
        if item.exempt_transport is not None:
            item.exempt_transport.close()


def _timeout_budget(timeout: float | None) -> float:
    default = float(read_setting("HTTPCLIENT_DEFAULT_TIMEOUT", 30.0))
    cap = float(read_setting("HTTPCLIENT_MAX_TIMEOUT", 120.0))
    seconds = default if timeout is None else float(timeout)
    if not seconds > 0:
        raise ValueError(TIMEOUT_NOT_POSITIVE)
    return min(seconds, cap)


def check_destination(
    url: str, *, allow_origins: Iterable[Origin | Exemption] = frozenset()
) -> None:
    """Static checks, DNS resolution and range checks, without connecting: for validating a
    base URL in a form. Raises DestinationRefused, or EgressError (kind "connect") when the
    name does not resolve."""
    parsed = check_url(url)
    if is_exempt(parsed, normalise_origins(allow_origins)):
        return
    try:
        resolve_checked(parsed.host, origin_of(parsed)[2], networks=allowed_networks())
    except EgressError as exc:
        exc.url = safe_url(parsed)
        raise


Params = Sequence[tuple[str, Any]] | Mapping[str, Any]


def _with_params(url: httpx.URL, params: Params) -> httpx.URL:
    """Append params after any query the URL already has, keeping order and repeats
    (httpx's QueryParams groups repeated keys, and its merge replaces keys the URL has)."""
    items = params.items() if isinstance(params, Mapping) else params
    pairs: list[tuple[str, Any]] = []
    for key, value in items:
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((key, item) for item in values)
    extra = "&".join(str(httpx.QueryParams([pair])) for pair in pairs)
    if not extra:
        return url
    query = url.query.decode("ascii")
    return url.copy_with(query=(f"{query}&{extra}" if query else extra).encode("ascii"))


@contextlib.contextmanager
def _failures(url: httpx.URL, budget: float) -> Iterator[None]:
    """Turn whatever goes wrong while talking to url into an EgressError naming it safely."""
    where = safe_url(url)
    try:
        yield
    except EgressError as exc:  # the guard refused, or the name did not resolve
        exc.url = exc.url or where
        raise
    except BodyDeadline:
        raise EgressError(
            TIMED_OUT.format(seconds=budget, url=where), KIND_TIMEOUT, url=where
        ) from None
    except BodyDecodeError as exc:
        message = BODY_NOT_DECODABLE.format(url=where, encoding=exc.encoding)
        raise EgressError(message, KIND_PROTOCOL, url=where) from None
    except httpx.HTTPError as exc:
        raise map_transport_error(exc, url, budget) from exc


def _exchange(
    transport: httpx.BaseTransport,
    request: httpx.Request,
    auth: httpx.Auth | None,
    read: Callable[[httpx.Response], Body],
) -> httpx.Response:
    """One request (several when an auth flow answers a challenge), straight on the transport:
    httpx.Client.send would also parse the Location header, failing on one it cannot read
    even when we are not following it."""
    if auth is None:
        response = transport.handle_request(request)
        response.request = request
        return response
    flow = auth.sync_auth_flow(request)
    request = next(flow)
    while True:
        response = transport.handle_request(request)
        response.request = request
        if auth.requires_response_body:  # read within the same caps as any body
            body = read(response)
            headers = httpx.Headers(response.headers)
            headers.pop("content-encoding", None)
            response = httpx.Response(
                response.status_code,
                headers=headers,
                content=body.content,
                request=request,
                extensions={**response.extensions, "egress_truncated": body.truncated},
            )
        try:
            next_request = flow.send(response)
        except StopIteration:
            return response
        except BaseException:  # the flow failed (a malformed challenge): free the connection
            response.close()
            raise
        response.close()
        request = next_request


def _redirect_target(
    response: httpx.Response, url: httpx.URL, method: str
) -> tuple[str, httpx.URL]:
    """The method and URL a redirect sends us to (303, and 301/302 after POST, become GET)."""
    location = response.headers["location"]
    try:
        target = url.join(location)
    except httpx.InvalidURL:
        check_url(location)  # an absolute Location gets its precise reason
        raise DestinationRefused(BAD_LOCATION.format(url=safe_url(url)), KIND_INVALID_URL) from None
    status = response.status_code
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        return "GET", target
    return method, target


def send(
    method: str,
    url: str | httpx.URL,
    *,
    params: Params | None = None,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | httpx.Headers | None = None,
    content: bytes | str | None = None,
    data: Mapping[str, Any] | None = None,
    files: Any = None,
    json: Any = None,
    auth: httpx.Auth | None = None,
    timeout: float | None = None,
    follow_redirects: bool = False,
    max_redirects: int | None = None,
    max_bytes: int | None = None,
    verify: bool = True,
    allow_origins: Iterable[Origin | Exemption] = frozenset(),
    strip_on_redirect: Iterable[str] = (),
) -> EgressResponse:
    """Send one request through the guard; follow redirects (re-checking each hop) when asked.

    timeout is a total budget in seconds for the whole exchange, redirects and body included.
    allow_origins exempts origins from the range checks: (scheme, host, port) for the whole
    origin, (scheme, host, port, path_prefix) for paths under the prefix only; every hop is
    matched on its own. A 307/308 that would resend a body to another origin is refused.
    Raises EgressError (DestinationRefused for the guard); never an httpx exception."""
    clock = time.monotonic
    started = clock()
    budget = _timeout_budget(timeout)
    deadline = started + budget
    if max_redirects is None:
        max_redirects = int(read_setting("HTTPCLIENT_MAX_REDIRECTS", 5))
    cap = max_bytes
    if cap is None:
        cap = int(read_setting("HTTPCLIENT_MAX_RESPONSE_BYTES", 10 * 1024 * 1024))
    exemptions = normalise_origins(allow_origins)
    networks = allowed_networks()
    pooled = _pooled_for(verify, networks, exemptions)
    strip = ALWAYS_STRIP_ON_REDIRECT | {name.lower() for name in strip_on_redirect}

    def read(response: httpx.Response) -> Body:
        return read_body(response, max_bytes=cap, deadline=deadline, clock=clock)

    hop_url = check_url(url)
    if params:
        hop_url = _with_params(hop_url, params)
    method = method.upper()
    body: dict[str, Any] = {"content": content, "data": data, "files": files, "json": json}
    hop_headers = httpx.Headers(DEFAULT_HEADERS)
    try:
        hop_headers.update(httpx.Headers(headers))
    except UnicodeEncodeError:  # httpx encodes header text as ASCII
        where = safe_url(hop_url)
        raise EgressError(
            REQUEST_NOT_SENDABLE.format(url=where), KIND_PROTOCOL, url=where
        ) from None
    home = origin_of(hop_url)
    left_home = False
    redirects: list[str] = []
    requested: set[tuple[str, str]] = set()

    while True:
        with _failures(hop_url, budget):
            check_url(hop_url)
            exempt = bool(exemptions) and is_exempt(hop_url, exemptions)
            check_literal_host(hop_url, networks=networks, exempt=exempt)
            transport = pooled.transport_for(exempt)
            remaining = deadline - clock()
            if remaining <= 0:
                raise BodyDeadline()
            requested.add((method, str(hop_url)))
            request = httpx.Request(
                method,
                hop_url,
                headers=hop_headers,
                extensions={"timeout": httpx.Timeout(remaining).as_dict()},
                **body,
            )
            response = _exchange(transport, request, None if left_home else auth, read)
            ttfb_ms = (clock() - started) * 1000
            is_redirect = response.status_code in REDIRECT_STATUSES
            if not (follow_redirects and is_redirect and "location" in response.headers):
                result = read(response)
                break
            response.close()
            redirects.append(str(hop_url))
            if len(redirects) > max_redirects:
                message = TOO_MANY_REDIRECTS.format(count=max_redirects, url=safe_url(hop_url))
                raise EgressError(message, KIND_TOO_MANY_REDIRECTS)
            next_method, next_url = _redirect_target(response, hop_url, method)
            if (next_method, str(next_url)) in requested:
                message = REDIRECT_LOOP.format(url=safe_url(next_url))
                raise EgressError(message, KIND_TOO_MANY_REDIRECTS)
            if (
                response.status_code in BODY_KEEPING_REDIRECTS
                and origin_of(next_url) != home
                and any(value for value in body.values())
            ):
                where = safe_url(next_url)
                message = REDIRECT_BODY_REFUSED.format(status=response.status_code, url=where)
                raise EgressError(message, KIND_REDIRECT_REFUSED, url=where)
        if next_method != method:
            body = {"content": None, "data": None, "files": None, "json": None}
            for name in _BODY_HEADERS:
                hop_headers.pop(name, None)
        if origin_of(next_url) != home:
            left_home = True  # once credentials have been dropped, they stay dropped
        if left_home:
            for name in strip:
                hop_headers.pop(name, None)
        method, hop_url = next_method, next_url

    return EgressResponse(
        status_code=response.status_code,
        reason=response.reason_phrase,
        headers=response.headers,
        content=result.content,
        truncated=result.truncated or bool(response.extensions.get("egress_truncated")),
        url=str(hop_url),
        http_version=response.http_version,
        elapsed_ms=(clock() - started) * 1000,
        ttfb_ms=ttfb_ms,
        redirects=redirects,
        request_headers=response.request.headers,
        downloaded_bytes=result.downloaded_bytes,
    )
