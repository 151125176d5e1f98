"""Navigation context: the current org, the user's other orgs, unread notices."""

from __future__ import annotations

from django.http import HttpRequest


def tenancy(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from workspaces.models import Membership, Notification

    memberships = list(
        Membership.objects.filter(user=user)
        .select_related("organization")
        .order_by("organization__name")
    )
    current = getattr(request, "membership", None)
    unread = 0
    if current is not None:
        unread = Notification.objects.filter(
            user=user, organization_id=current.organization_id, read_at__isnull=True
        ).count()
    return {
        "my_memberships": memberships,
        "current_membership": current,
        "current_org": current.organization if current is not None else None,
        "unread_notifications": unread,
    }
