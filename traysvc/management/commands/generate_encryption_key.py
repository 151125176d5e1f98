"""`manage.py generate_encryption_key`: print a new key for TRAYSVC_ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from traysvc.crypto import generate_key


class Command(BaseCommand):
    help = (
        "Print a new random AES-256 key (urlsafe base64). Put it first in "
        "TRAYSVC_ENCRYPTION_KEYS to make it the primary key; keep the old keys after it."
    )
    requires_system_checks: list[str] = []  # works even while the current keyring is broken

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(generate_key())
