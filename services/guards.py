"""Hooks services registers into workspaces (so workspaces never imports services)."""

from __future__ import annotations

from django.urls import reverse

from workspaces.models import Membership
from workspaces.services import membership_removal_guards

OWNS_SERVICES = (
    "{email} owns {count} {noun}. Transfer {them} to another member or to the service owner "
    "first: {url}"
)


def member_owns_services(membership: Membership) -> str | None:
    """Refuse to remove a member whose personal workspace still holds services."""
    from services.selectors import services_owned_by

    count = services_owned_by(membership=membership).count()
    if not count:
        return None
    url = reverse(
        "services:transfer_member",
        kwargs={"org": membership.organization.slug, "membership_id": membership.public_id},
    )
    return OWNS_SERVICES.format(
        email=membership.user.email,
        count=count,
        noun="service" if count == 1 else "services",
        them="it" if count == 1 else "them",
        url=url,
    )


if member_owns_services not in membership_removal_guards:
    membership_removal_guards.append(member_owns_services)
