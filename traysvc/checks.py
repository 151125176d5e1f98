"""System checks: refuse to start (and say why) when the secrets keyring is misconfigured."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from traysvc import crypto

KEYRING_HINT = "Generate a key with `python manage.py generate_encryption_key`."


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
