"""System checks: refuse to start (and say why) when the secrets keyring or the SSRF guard's
allow-list is misconfigured."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from traysvc import crypto

KEYRING_HINT = "Generate a key with `python manage.py generate_encryption_key`."
NETWORKS_HINT = (
    "Give networks in CIDR notation with no host bits set, comma-separated, e.g. "
    "HTTPCLIENT_ALLOW_NETWORKS=127.0.0.0/8,fd00::/8 (127.0.0.1/8 is refused: write 127.0.0.0/8 "
    "or 127.0.0.1/32)."
)


@register(Tags.security)
def check_encryption_keys(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """traysvc.E001: TRAYSVC_ENCRYPTION_KEYS must parse, or no secret can be read or written."""
    try:
        crypto.check_keyring()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint=KEYRING_HINT, id="traysvc.E001")]
    return []


def check_allow_networks() -> None:
    """Parse HTTPCLIENT_ALLOW_NETWORKS exactly as the egress guard does at call time; raises
    ImproperlyConfigured (the guard's own message) on a bad entry."""
    from traysvc.egress.guard import allowed_networks

    allowed_networks()


@register(Tags.security)
def check_egress_allow_networks(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """traysvc.E002: a bad HTTPCLIENT_ALLOW_NETWORKS entry would otherwise only fail at the
    first outbound call, as an "internal" error."""
    try:
        check_allow_networks()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint=NETWORKS_HINT, id="traysvc.E002")]
    return []
