"""The one SSRF exemption the app grants itself: its own origin, paths under /sandbox/ only,
while the sandbox is on. Egress matches the prefix on every request and redirect hop, so
neither a path nor a redirect reaches /admin/, /api/ or /healthz of the app itself."""

from __future__ import annotations

import httpx
from django.conf import settings

from traysvc.egress.guard import Exemption

SANDBOX_PREFIX = "/sandbox/"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: httpx.URL) -> tuple[str, str, int] | None:
    if url.scheme not in _DEFAULT_PORTS or not url.host:
        return None
    return (url.scheme, url.host.lower(), url.port or _DEFAULT_PORTS[url.scheme])


def sandbox_exemption(url: str | httpx.URL) -> frozenset[Exemption]:
    """{(scheme, host, port, "/sandbox/")} when `url` is on the app's own origin and the sandbox
    is on; empty otherwise (loopback in general stays refused)."""
    if not settings.TRAYSVC_SANDBOX:
        return frozenset()
    try:
        target = _origin(httpx.URL(url))
        own = _origin(httpx.URL(settings.TRAYSVC_PUBLIC_URL))
    except httpx.InvalidURL:
        return frozenset()
    if target is None or target != own:
        return frozenset()
    return frozenset({(*own, SANDBOX_PREFIX)})
