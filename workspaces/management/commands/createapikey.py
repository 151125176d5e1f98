"""createapikey --email EMAIL --org SLUG: prints a new API key, once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workspaces.models import Membership
from workspaces.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a member of an organization and print it (shown once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--org", required=True)
        parser.add_argument("--name", default="API key")

    def handle(self, *args: Any, **options: Any) -> None:
        membership = (
            Membership.objects.select_related("organization", "user")
            .filter(user__email__iexact=options["email"], organization__slug=options["org"])
            .first()
        )
        if membership is None:
            raise CommandError(
                f"{options['email']} is not a member of an organization “{options['org']}”."
            )
        _key, full = api_key_create(membership=membership, name=options["name"])
        self.stdout.write(full)
