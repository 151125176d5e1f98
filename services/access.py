"""Access to services and authentications: another organization's object is a 404.

Reading a service is org-wide; an authentication is visible only in its member's workspaces.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import PermissionDenied
from django.http import Http404

from services.authentications import authentications_usable_by
from services.models import Authentication, Service
from workspaces.models import Membership

NOT_SERVICE_OWNER = (
    "Only the service's owner or an organization admin can change or delete this service."
)


def can_edit_service(membership: Membership, service: Service) -> bool:
    """The owner (whose personal workspace holds it) or an org admin may change a service."""
    if service.organization_id != membership.organization_id:
        return False
    return membership.is_admin or service.owner_workspace.owner_id == membership.pk


def get_service_for_member(
    membership: Membership, public_id: uuid.UUID | str, *, write: bool = False
) -> Service:
    """The service with this public id in the member's organization; 404 elsewhere, 403 on write."""
    try:
        public_id = uuid.UUID(str(public_id))
    except ValueError:
        raise Http404 from None
    service = (
        Service.objects.select_related("organization", "owner_workspace__owner__user")
        .filter(organization_id=membership.organization_id, public_id=public_id)
        .first()
    )
    if service is None:
        raise Http404
    if write and not can_edit_service(membership, service):
        raise PermissionDenied(NOT_SERVICE_OWNER)
    return service


def get_authentication_for_member(
    membership: Membership, public_id: uuid.UUID | str
) -> Authentication:
    """One the member may use (their workspaces); 404 for anything else, other orgs included."""
    try:
        public_id = uuid.UUID(str(public_id))
    except ValueError:
        raise Http404 from None
    authentication = (
        authentications_usable_by(membership=membership).filter(public_id=public_id).first()
    )
    if authentication is None:
        raise Http404
    return authentication
