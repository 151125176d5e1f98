"""The SSRF guard: which URLs and addresses outbound requests may reach.

Two layers. `check_url` refuses what is wrong on the face of a URL (scheme, credentials,
odd numeric spellings of an IPv4 address). `GuardedBackend` is the httpcore network backend
under the pooled client: it resolves the host name itself, checks every address, and connects
to an address it checked, so a DNS answer that changes between check and connect (rebinding)
changes nothing. TLS SNI and the Host header keep the name, since httpcore only hands the
backend the connect step.
"""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpcore
import httpx
from django.core.exceptions import ImproperlyConfigured

from traysvc.egress.errors import KIND_CONNECT, KIND_INVALID_URL, DestinationRefused, EgressError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Origin = tuple[str, str, int]
# An origin exempt from the range checks, optionally only for paths under a prefix ("" = all):
# ("http", "127.0.0.1", 8000, "/sandbox/"). Callers may pass plain Origins for the whole origin.
Exemption = tuple[str, str, int, str]
Resolver = Callable[[str, int], Sequence[str]]

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}

# Messages (the words users see; tests assert them).
REFUSED_ADDRESS = "refused: {address} is {description}; set HTTPCLIENT_ALLOW_NETWORKS to allow it"
REFUSED_NAME = (
    "refused: {host} resolves to {address}, {description}; "
    "set HTTPCLIENT_ALLOW_NETWORKS to allow it"
)
REFUSED_SCHEME = "refused: only http and https URLs may be called, not {scheme}:"
REFUSED_CREDENTIALS = (
    "refused: the URL carries a user name or password; put credentials in an authentication"
)
REFUSED_NONCANONICAL_IPV4 = (
    "refused: {host} is a non-canonical spelling of the IPv4 address {address}; such hosts are "
    "refused outright, write {address} if you mean it"
)
REFUSED_UNIX_SOCKET = "refused: unix sockets are not a destination"
INVALID_URL = "invalid URL: {reason}"
INVALID_URL_NO_HOST = "invalid URL: it has no host"
INVALID_URL_NOT_TEXT = "invalid URL: it must be a string"
RESOLVE_FAILED = "could not resolve {host}: the name does not exist or DNS failed"
RESOLVE_EMPTY = "could not resolve {host}: DNS returned no address"
BAD_NETWORK = (
    "HTTPCLIENT_ALLOW_NETWORKS: {value!r} is not a network in CIDR notation "
    "(for example 127.0.0.0/8 or fd00::/8)"
)
EMBEDDED = "{form} of {ipv4}, which is {description}"

# Descriptions of refused ranges: "<address> is <description>".
LOOPBACK = "a loopback address (127.0.0.0/8)"
PRIVATE = "a private address (RFC 1918)"
LINK_LOCAL = "a link-local address (169.254.0.0/16)"
METADATA_V4 = "a cloud metadata address (169.254.169.254)"
METADATA_V6 = "a cloud metadata address (fd00:ec2::254)"
CGNAT = "a carrier-grade NAT address (100.64.0.0/10)"
MULTICAST = "a multicast address (224.0.0.0/4)"
BROADCAST = "the broadcast address (255.255.255.255)"
UNSPECIFIED_V4 = "the unspecified address (0.0.0.0)"
THIS_NETWORK = "a 'this network' address (0.0.0.0/8)"
RESERVED_V4 = "a reserved address (240.0.0.0/4)"
IETF_V4 = "an IETF protocol assignment (192.0.0.0/24)"
RELAY_6TO4 = "the 6to4 relay anycast range (192.88.99.0/24)"
BENCHMARKING_V4 = "a benchmarking address (198.18.0.0/15)"
DOCUMENTATION_V4 = "a documentation address (RFC 5737)"
NOT_GLOBAL_V4 = "an address that is not globally routable"
UNSPECIFIED_V6 = "the unspecified address (::)"
LOOPBACK_V6 = "a loopback address (::1)"
NAT64_LOCAL = "a local-use NAT64 address (64:ff9b:1::/48)"
DISCARD_V6 = "a discard-only address (100::/64)"
TEREDO = "a Teredo tunnel address (2001::/32)"
BENCHMARKING_V6 = "a benchmarking address (2001:2::/48)"
DOCUMENTATION_V6 = "a documentation address (2001:db8::/32, 3fff::/20)"
IETF_V6 = "an IETF protocol assignment (2001::/23)"
UNIQUE_LOCAL = "an IPv6 unique-local address (fc00::/7)"
LINK_LOCAL_V6 = "an IPv6 link-local address (fe80::/10)"
SITE_LOCAL_V6 = "a deprecated IPv6 site-local address (fec0::/10)"
MULTICAST_V6 = "a multicast address (ff00::/8)"
RESERVED_V6 = "a reserved address (outside 2000::/3, the global unicast range)"
COMPAT_V6 = "a deprecated IPv4-compatible address (::/96)"
FORM_MAPPED = "an IPv4-mapped form"
FORM_COMPAT = "an IPv4-compatible form"
FORM_NAT64 = "a NAT64 form"
FORM_6TO4 = "a 6to4 form"

# First match wins, so the specific entries come before the ranges that contain them.
_V4_RANGES: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(cidr), description)
    for cidr, description in (
        ("169.254.169.254/32", METADATA_V4),
        ("0.0.0.0/32", UNSPECIFIED_V4),
        ("255.255.255.255/32", BROADCAST),
        ("0.0.0.0/8", THIS_NETWORK),
        ("10.0.0.0/8", PRIVATE),
        ("100.64.0.0/10", CGNAT),
        ("127.0.0.0/8", LOOPBACK),
        ("169.254.0.0/16", LINK_LOCAL),
        ("172.16.0.0/12", PRIVATE),
        ("192.0.0.0/24", IETF_V4),
        ("192.0.2.0/24", DOCUMENTATION_V4),
        ("192.88.99.0/24", RELAY_6TO4),
        ("192.168.0.0/16", PRIVATE),
        ("198.18.0.0/15", BENCHMARKING_V4),
        ("198.51.100.0/24", DOCUMENTATION_V4),
        ("203.0.113.0/24", DOCUMENTATION_V4),
        ("224.0.0.0/4", MULTICAST),
        ("240.0.0.0/4", RESERVED_V4),
    )
)
_V6_RANGES: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(cidr), description)
    for cidr, description in (
        ("::/128", UNSPECIFIED_V6),
        ("::1/128", LOOPBACK_V6),
        ("fd00:ec2::254/128", METADATA_V6),
        ("64:ff9b:1::/48", NAT64_LOCAL),
        ("100::/64", DISCARD_V6),
        ("2001::/32", TEREDO),
        ("2001:2::/48", BENCHMARKING_V6),
        ("2001:db8::/32", DOCUMENTATION_V6),
        ("3fff::/20", DOCUMENTATION_V6),
        ("2001::/23", IETF_V6),
        ("fc00::/7", UNIQUE_LOCAL),
        ("fe80::/10", LINK_LOCAL_V6),
        ("fec0::/10", SITE_LOCAL_V6),
        ("ff00::/8", MULTICAST_V6),
    )
)
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_COMPAT = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_NUMERIC_HOST_CHARS = frozenset("0123456789abcdefxABCDEFX.")

# Set by the exempt transport for the request being sent (its URL matched the caller's
# allow_origins). Read by GuardedBackend.connect_tcp, which runs in the same thread.
exempt_connection: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "traysvc_egress_exempt", default=False
)


# -- settings ---------------------------------------------------------------------------------


def read_setting(name: str, default: Any) -> Any:
    """A setting read at call time; the default when Django is not configured (scripts)."""
    from django.conf import settings

    if not settings.configured:
        return default
    return getattr(settings, name, default)


@functools.lru_cache(maxsize=32)
def parse_networks(values: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """CIDR strings -> networks; a bad entry stops with one clear line."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(str(value).strip(), strict=True))
        except ValueError as exc:
            raise ImproperlyConfigured(BAD_NETWORK.format(value=value)) from exc
    return tuple(networks)


def allowed_networks() -> tuple[IPNetwork, ...]:
    """settings.HTTPCLIENT_ALLOW_NETWORKS, parsed (a list, or a comma string)."""
    raw = read_setting("HTTPCLIENT_ALLOW_NETWORKS", ()) or ()
    if isinstance(raw, str):
        raw = [item for item in raw.split(",") if item.strip()]
    return parse_networks(tuple(raw))


# -- address ranges ---------------------------------------------------------------------------


def _classify_v4(address: ipaddress.IPv4Address) -> str | None:
    for network, description in _V4_RANGES:
        if address in network:
            return description
    if not address.is_global:  # belt and braces: whatever Python also knows is not public
        return NOT_GLOBAL_V4
    return None


def _embedded(form: str, ipv4: ipaddress.IPv4Address) -> str | None:
    inner = _classify_v4(ipv4)
    return None if inner is None else EMBEDDED.format(form=form, ipv4=ipv4, description=inner)


def _classify_v6(address: ipaddress.IPv6Address) -> str | None:
    if address in _MAPPED:
        return _embedded(FORM_MAPPED, ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address in _COMPAT and int(address) > 1:
        ipv4 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        return _embedded(FORM_COMPAT, ipv4) or COMPAT_V6
    if address in _NAT64:
        return _embedded(FORM_NAT64, ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address in _SIX_TO_FOUR:
        return _embedded(FORM_6TO4, ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF))
    for network, description in _V6_RANGES:
        if address in network:
            return description
    if address not in _GLOBAL_UNICAST:
        return RESERVED_V6
    return None


def _in_networks(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(
        candidate.version == network.version and candidate in network
        for candidate in candidates
        for network in networks
    )


def refusal_reason(address: IPAddress, networks: Iterable[IPNetwork] = ()) -> str | None:
    """Why the guard refuses this address (a description), or None when it may be reached."""
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    if _in_networks(address, networks):
        return None
    if isinstance(address, ipaddress.IPv4Address):
        return _classify_v4(address)
    return _classify_v6(address)


def check_address(
    address: IPAddress, *, networks: Iterable[IPNetwork] = (), host: str | None = None
) -> None:
    """Raise DestinationRefused naming the address and its range, unless it is allowed."""
    description = refusal_reason(address, networks)
    if description is None:
        return
    if host is None or host == str(address):
        raise DestinationRefused(REFUSED_ADDRESS.format(address=address, description=description))
    raise DestinationRefused(
        REFUSED_NAME.format(host=host, address=address, description=description)
    )


# -- static URL checks ------------------------------------------------------------------------


def noncanonical_ipv4(host: str) -> str | None:
    """The dotted quad a numeric host means when it is spelled oddly (2130706433, 0x7f.1,
    0177.0.0.1, 127.1, a trailing dot), else None. Resolvers read these with inet_aton
    rules, so they would reach an address the user never wrote."""
    stripped = host[:-1] if host.endswith(".") else host
    if not stripped or not set(stripped) <= _NUMERIC_HOST_CHARS or not stripped[0].isdigit():
        return None
    try:
        canonical = socket.inet_ntoa(socket.inet_aton(stripped))
    except OSError:
        return None
    return None if canonical == host else canonical


def _refuse_noncanonical(host: str | None) -> None:
    if host:
        canonical = noncanonical_ipv4(host)
        if canonical is not None:
            raise DestinationRefused(REFUSED_NONCANONICAL_IPV4.format(host=host, address=canonical))


def check_url(url: str | httpx.URL) -> httpx.URL:
    """The checks a URL must pass before any connection: http(s), no credentials, a host,
    no odd numeric host. Returns the parsed URL."""
    if isinstance(url, str):
        # Look at the host the way urllib reads it too, so "0177.0.0.1" (which httpx rejects
        # as a bad IPv4 address) gets the clearer reason.
        from urllib.parse import urlsplit

        try:
            _refuse_noncanonical(urlsplit(url).hostname)
        except ValueError:
            pass
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise DestinationRefused(
                INVALID_URL.format(reason=str(exc)[:120]), KIND_INVALID_URL
            ) from exc
    elif isinstance(url, httpx.URL):
        parsed = url
    else:
        raise DestinationRefused(INVALID_URL_NOT_TEXT, KIND_INVALID_URL)
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise DestinationRefused(REFUSED_SCHEME.format(scheme=parsed.scheme[:20] or "(none)"))
    if parsed.userinfo:
        raise DestinationRefused(REFUSED_CREDENTIALS)
    if not parsed.host:
        raise DestinationRefused(INVALID_URL_NO_HOST, KIND_INVALID_URL)
    _refuse_noncanonical(parsed.host)
    return parsed


def origin_of(url: httpx.URL) -> Origin:
    """(scheme, host, port) with the default port filled in."""
    return (url.scheme, url.host.lower(), url.port or DEFAULT_PORTS.get(url.scheme, 0))


def normalise_origins(origins: Iterable[Origin | Exemption]) -> frozenset[Exemption]:
    """(scheme, host, port[, path_prefix]) entries as Exemptions, lowercased ("" = any path)."""
    out = set()
    for entry in origins:
        scheme, host, port = entry[0], entry[1], entry[2]
        prefix = str(entry[3]) if len(entry) > 3 else ""  # type: ignore[misc]
        out.add((str(scheme).lower(), str(host).lower().strip("[]"), int(port), prefix))
    return frozenset(out)


def path_under(url: httpx.URL, prefix: str) -> bool:
    """Is the URL's path under prefix, however it is spelled? A dot segment or a backslash,
    even percent-encoded (which httpx does not resolve, but a server or proxy might), is not."""
    if not prefix:
        return True
    path = url.path  # decoded; literal dot segments already resolved by httpx
    if "\\" in path or any(part in (".", "..") for part in path.split("/")):
        return False
    raw = url.raw_path.split(b"?", 1)[0].decode("ascii", errors="replace")
    return path.startswith(prefix) and raw.startswith(prefix)


def is_exempt(url: httpx.URL, exemptions: Iterable[Exemption]) -> bool:
    """Does this URL fall under one of the exemptions (origin, and path prefix if any)?"""
    origin = origin_of(url)
    return any(
        (scheme, host, port) == origin and path_under(url, prefix)
        for scheme, host, port, prefix in exemptions
    )


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_literal_host(
    url: httpx.URL, *, networks: Iterable[IPNetwork], exempt: bool = False
) -> None:
    """The range check that needs no DNS: an IP literal host, unless the URL is exempt."""
    address = ip_literal(url.host)
    if address is not None and not exempt:
        check_address(address, networks=networks)


# -- resolution -------------------------------------------------------------------------------


def system_resolver(host: str, port: int) -> list[str]:
    """socket.getaddrinfo, addresses only, in the order the system prefers."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


_resolver: Resolver = system_resolver


def set_resolver(resolver: Resolver | None) -> Resolver:
    """Swap the resolver (tests map names to addresses); None restores the system one.
    Returns the previous resolver."""
    global _resolver
    previous = _resolver
    _resolver = resolver or system_resolver
    return previous


def resolve_checked(
    host: str, port: int, *, networks: Iterable[IPNetwork] = (), exempt: bool = False
) -> list[IPAddress]:
    """Resolve host once and check every address; all must pass (one private answer among
    public ones refuses the name). Returns the addresses to connect to, in order."""
    literal = ip_literal(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            answers = list(_resolver(host, port))
            addresses = [ipaddress.ip_address(str(answer)) for answer in answers]
        except (OSError, UnicodeError, ValueError) as exc:
            raise EgressError(RESOLVE_FAILED.format(host=host), KIND_CONNECT) from exc
        if not addresses:
            raise EgressError(RESOLVE_EMPTY.format(host=host), KIND_CONNECT)
        addresses = list(dict.fromkeys(addresses))
    if not exempt:
        networks = tuple(networks)
        for address in addresses:
            check_address(address, networks=networks, host=None if literal else host)
    return [
        address.ipv4_mapped
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped
        else address
        for address in addresses
    ]


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's SyncBackend, but connect_tcp resolves, checks and connects to the checked
    address itself. Every new connection of the pooled client passes through here."""

    def __init__(
        self, networks: Iterable[IPNetwork] = (), inner: httpcore.NetworkBackend | None = None
    ) -> None:
        self._networks = tuple(networks)
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve_checked(
            host, port, networks=self._networks, exempt=exempt_connection.get()
        )
        options = list(socket_options or [])
        last_error: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=options,
                )
            except httpcore.ConnectError as exc:  # try the next address; a timeout ends it
                last_error = exc
        assert last_error is not None  # noqa: S101 (addresses is never empty)
        raise last_error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise DestinationRefused(REFUSED_UNIX_SOCKET)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
