"""Reads of services that are more than a lookup."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from services.models import Service
from workspaces.models import Membership


def services_visible_to(*, membership: Membership) -> QuerySet[Service]:
    """Every service of the member's organization (services are org-wide), owner preloaded."""
    return (
        Service.objects.filter(organization_id=membership.organization_id)
        .select_related("organization", "owner_workspace__owner__user")
        .annotate(authentication_count=Count("authentications"))
        .order_by("name")
    )


def services_owned_by(*, membership: Membership) -> QuerySet[Service]:
    """Services in this member's personal workspace (what leaves with them)."""
    return Service.objects.filter(
        organization_id=membership.organization_id, owner_workspace__owner=membership
    ).order_by("name")
