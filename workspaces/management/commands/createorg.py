"""createorg --name NAME --owner EMAIL [--password P]: prints the org slug."""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction

from workspaces.services import organization_create


def ensure_user(email: str, password: str | None) -> Any:
    """The user with this email (created, verified, if missing)."""
    User = get_user_model()
    email = email.strip().lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User(username=email[:150], email=email)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
    elif password:
        user.set_password(password)
        user.save(update_fields=["password"])
    EmailAddress.objects.update_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    return user


class Command(BaseCommand):
    help = "Create an organization (and its owner, email verified, if missing). Prints the slug."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, help="the owner's email")
        parser.add_argument("--password", default=None)
        parser.add_argument("--slug", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            validate_email(options["owner"])
        except ValidationError as exc:
            raise CommandError(
                f"--owner: {options['owner']!r} is not a valid email address."
            ) from exc
        try:
            with transaction.atomic():
                user = ensure_user(options["owner"], options["password"])
                org = organization_create(name=options["name"], owner=user, slug=options["slug"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(org.slug)
