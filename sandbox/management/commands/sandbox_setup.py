"""sandbox_setup: create the sandbox provider's OAuth clients and end user (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sandbox.clients import ensure_sandbox_apps


class Command(BaseCommand):
    help = (
        "Create or update the sandbox OAuth2 clients (authorization code + PKCE, client "
        "credentials) and the sandbox end user; print their credentials. The same secrets come "
        "back on every run unless --rotate is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--rotate",
            action="store_true",
            help="generate new client secrets (rerun seed_demo afterwards to update the "
            "Sandbox services)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        apps = ensure_sandbox_apps(rotate=options["rotate"])
        rows = [
            ("issuer", apps.issuer),
            ("authorize_url", apps.authorize_url),
            ("token_url", apps.token_url),
            ("revoke_url", apps.revoke_url),
            ("api_base", apps.api_base),
            ("redirect_uri", apps.redirect_uri),
            ("client_id", apps.client_id),
            ("client_secret", apps.client_secret),
            ("cc_client_id", apps.cc_client_id),
            ("cc_client_secret", apps.cc_client_secret),
            ("user", f"{apps.user_email} / {apps.user_password}"),
        ]
        for key, value in rows:
            self.stdout.write(f"{key}: {value}")
