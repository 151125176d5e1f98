"""Tenant resolution and access helpers: another organization's object is always a 404."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse

from workspaces.models import Invitation, Membership, Organization, Workspace, WorkspaceKind

NOT_ADMIN = "Only the organization's owners and admins can do this."
NOT_WORKSPACE_MEMBER = "You are not a member of this shared workspace."

View = Callable[..., HttpResponse]


def resolve_membership(user: Any, org_slug: str) -> Membership:
    """The user's membership in the org named by the URL, or 404 (never reveal that it exists)."""
    if not user.is_authenticated:
        raise Http404
    membership = (
        Membership.objects.select_related("organization", "user")
        .filter(organization__slug=org_slug, user=user)
        .first()
    )
    if membership is None:
        raise Http404
    return membership


def org_member_required(view: View | None = None, *, admin: bool = False) -> Any:
    """Resolve `/o/<org>/` into request.organization / request.membership, or 404; admin -> 403."""

    def decorate(func: View) -> View:
        @functools.wraps(func)
        def wrapper(request: HttpRequest, org: str, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                from django.contrib.auth.views import redirect_to_login

                return redirect_to_login(request.get_full_path())
            membership = resolve_membership(request.user, org)
            if admin and not membership.is_admin:
                raise PermissionDenied(NOT_ADMIN)
            request.membership = membership  # type: ignore[attr-defined]
            request.organization = membership.organization  # type: ignore[attr-defined]
            return func(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def require_admin(membership: Membership) -> None:
    if not membership.is_admin:
        raise PermissionDenied(NOT_ADMIN)


def get_membership_in_org(organization: Organization, public_id: uuid.UUID) -> Membership:
    membership = (
        Membership.objects.select_related("user", "organization")
        .filter(organization=organization, public_id=public_id)
        .first()
    )
    if membership is None:
        raise Http404
    return membership


def get_invitation_in_org(organization: Organization, public_id: uuid.UUID) -> Invitation:
    invitation = Invitation.objects.filter(organization=organization, public_id=public_id).first()
    if invitation is None:
        raise Http404
    return invitation


def workspaces_for_member(membership: Membership) -> list[Workspace]:
    """Workspaces this member may use: their personal one and the shared ones they belong to."""
    return list(
        Workspace.objects.filter(organization_id=membership.organization_id)
        .filter(
            Q(kind=WorkspaceKind.PERSONAL, owner=membership)
            | Q(kind=WorkspaceKind.SHARED, members__membership=membership)
        )
        .distinct()
        .order_by("kind", "name")
    )


def get_workspace_for_member(
    membership: Membership, public_id: uuid.UUID, *, manage: bool = False
) -> Workspace:
    """A workspace the member may use; `manage` (membership changes) needs org admin for shared."""
    workspace = (
        Workspace.objects.filter(organization_id=membership.organization_id, public_id=public_id)
        .select_related("owner__user")
        .first()
    )
    if workspace is None:
        raise Http404
    if workspace.is_personal:
        if workspace.owner_id != membership.pk:
            raise Http404
        return workspace
    if membership.is_admin:
        return workspace
    if not workspace.members.filter(membership=membership).exists():
        raise PermissionDenied(NOT_WORKSPACE_MEMBER)
    if manage:
        raise PermissionDenied(NOT_ADMIN)
    return workspace
