"""allauth hooks: a new account gets its own organization unless an invitation waits for it."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest
from django.utils import timezone

from workspaces.models import Invitation


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request: HttpRequest, user, form, commit: bool = True):  # type: ignore[no-untyped-def]
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            pending = Invitation.objects.filter(
                email__iexact=user.email, accepted_at__isnull=True, expires_at__gt=timezone.now()
            ).exists()
            if not pending:
                from workspaces.services import organization_create

                local = (user.email or "me").split("@")[0]
                organization_create(name=f"{local}'s organization", owner=user)
        return user
