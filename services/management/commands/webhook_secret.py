"""webhook_secret --org SLUG: prints the org's webhook signing secret, for the receiver."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from services.notify import webhook_secret
from workspaces.models import Organization


class Command(BaseCommand):
    help = (
        "Print an organization's webhook signing secret. Receivers verify "
        "X-Traysvc-Signature: sha256=HMAC-SHA256(secret, body). It changes with SECRET_KEY."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        org = Organization.objects.filter(slug=options["org"]).first()
        if org is None:
            raise CommandError(f"There is no organization “{options['org']}”.")
        self.stdout.write(webhook_secret(org))
