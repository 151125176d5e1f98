"""refresh_authentications: run the refresh sweep now, in this process; prints what it refreshed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from services.models import Authentication
from services.refresh import (
    REASON_COMMAND,
    RefreshError,
    authentication_refresh,
    due_authentication_ids,
    warn_expiring,
)

REFRESHED = "refreshed {name} ({id})"
NOT_REFRESHED = "not refreshed {name} ({id}): {error}"
UNCHANGED = "unchanged {name} ({id}): another worker had refreshed it"
SUMMARY = "{refreshed} refreshed, {failed} failed, {due} due."


class Command(BaseCommand):
    help = "Refresh every OAuth2 grant that is due now, synchronously, and print each result."

    def handle(self, *args: Any, **options: Any) -> None:
        warn_expiring()
        ids = due_authentication_ids()
        refreshed = failed = 0
        for authentication_id in ids:
            before = Authentication.objects.filter(pk=authentication_id).first()
            if before is None:
                continue
            words = {"name": before.name, "id": before.public_id}
            try:
                after = authentication_refresh(
                    authentication_id=authentication_id, reason=REASON_COMMAND
                )
            except RefreshError as exc:
                failed += 1
                self.stdout.write(NOT_REFRESHED.format(**words, error=exc.message))
                continue
            if after.refresh_count > before.refresh_count or after.secrets != before.secrets:
                refreshed += 1
                self.stdout.write(REFRESHED.format(**words))
            else:
                self.stdout.write(UNCHANGED.format(**words))
        self.stdout.write(SUMMARY.format(refreshed=refreshed, failed=failed, due=len(ids)))
