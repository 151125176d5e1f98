"""seed_demo: the demo organization, user and services `make run` starts with (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from services.seed import seed_demo


class Command(BaseCommand):
    help = (
        "Create the Demo organization, demo@example.com (password generated once into var/) "
        "and a few services; the Sandbox services too when TRAYSVC_SANDBOX is on. Safe to rerun."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        seed = seed_demo()
        for line in seed.lines:
            self.stdout.write(line)
