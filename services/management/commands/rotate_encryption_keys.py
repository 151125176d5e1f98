"""rotate_encryption_keys: re-encrypt every stored secret under the primary key; prints the count.

Rotation: put the new key first in TRAYSVC_ENCRYPTION_KEYS (keep the old one after it), run
this, then drop the old key. Values already under the primary key are skipped, so it can be
re-run safely; each row is updated only if it still holds the value that was read (a refresh
writing meanwhile wins, and its value is already under the primary key).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError

from traysvc import crypto

# (app_label.Model, encrypted field, property naming the row's associated data)
ENCRYPTED_FIELDS = [
    ("services.Service", "secret_params", "secrets_aad"),
    ("services.Authentication", "secrets", "secrets_aad"),
    ("services.OAuthFlow", "code_verifier", "verifier_aad"),
    ("sandbox.SandboxClientSecret", "secret", "secret_aad"),  # only when the sandbox is on
]

DONE = "Re-encrypted {count} secrets under the primary key ({current} already were)."
FAILED = "{label} {pk}: this secret {reason}"
SOME_FAILED = "{failed} secrets could not be re-encrypted (see above); the rest were."


def _rows(label: str, field: str) -> Iterator[Any]:
    try:
        model = apps.get_model(label)
    except LookupError:
        return iter(())
    return model.objects.exclude(**{field: ""}).order_by("pk").iterator(chunk_size=500)


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the first key of TRAYSVC_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        crypto.check_keyring()
        count = current = failed = 0
        for label, field, aad_attr in ENCRYPTED_FIELDS:
            for row in _rows(label, field):
                token = getattr(row, field)
                try:
                    if crypto.is_current(token):
                        current += 1
                        continue
                    fresh = crypto.reencrypt(token, aad=getattr(row, aad_attr))
                except crypto.DecryptionError as exc:
                    failed += 1
                    self.stderr.write(FAILED.format(label=label, pk=row.pk, reason=exc))
                    continue
                updated = (
                    type(row).objects.filter(pk=row.pk, **{field: token}).update(**{field: fresh})
                )
                count += updated
                current += 1 - updated  # rewritten meanwhile: by the app, under the primary key
        self.stdout.write(DONE.format(count=count, current=current))
        if failed:
            raise CommandError(SOME_FAILED.format(failed=failed))
