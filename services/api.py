"""The services JSON API (CONTRACT.md): /services and /connectors, mounted by traysvc.api.

Input is parsed loosely here and validated by services.services, exactly like the form, so the
API and the pages give the same field errors (422 `{detail, errors: {field: [..]}}`).
Secret params are write-only: responses say which are set, never what they are.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.errors import HttpError
from pydantic import ConfigDict

from services import services as svc
from services.access import get_service_for_member
from services.catalog import load_catalog
from services.models import Service
from services.selectors import services_visible_to
from workspaces.models import Membership

CONFIRM_DELETE = "Repeat with ?delete_authentications=true to delete them too."

router = Router(tags=["services"])


class ServiceIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    base_url: str
    auth_method: str
    auth_params: dict[str, Any] = {}
    extra_params: list[dict[str, Any]] = []
    test_request: dict[str, Any] | None = None
    pagination: dict[str, Any] | None = None
    default_headers: dict[str, Any] = {}
    acknowledge_insecure: bool = False
    workspace: uuid.UUID | None = None


class ServicePatch(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    base_url: str | None = None
    auth_method: str | None = None
    auth_params: dict[str, Any] | None = None
    extra_params: list[dict[str, Any]] | None = None
    test_request: dict[str, Any] | None = None
    pagination: dict[str, Any] | None = None
    default_headers: dict[str, Any] | None = None
    acknowledge_insecure: bool | None = None
    # Moving base_url to another host while other people's authentications use the service.
    confirm_origin_change: bool = False


class ServiceOut(Schema):
    id: uuid.UUID
    name: str
    slug: str
    description: str
    base_url: str
    auth_method: str
    auth_params: dict[str, Any]
    owner: str
    workspace: uuid.UUID
    connector: str | None
    extra_params: list[dict[str, Any]]
    test_request: dict[str, Any] | None
    pagination: dict[str, Any] | None
    default_headers: dict[str, str]
    source: str
    created_at: datetime
    updated_at: datetime


class ServiceDetailOut(ServiceOut):
    secret_params_set: list[str]
    endpoints: list[dict[str, Any]]


class ConnectorOut(Schema):
    key: str
    name: str
    description: str
    base_url: str
    auth_method: str
    docs_url: str


def _membership(request: HttpRequest) -> Membership:
    return request.membership  # type: ignore[attr-defined,no-any-return]


def _out(service: Service, *, detail: bool = False) -> dict[str, Any]:
    owner = service.owner_workspace.owner
    data: dict[str, Any] = {
        "id": service.public_id,
        "name": service.name,
        "slug": service.slug,
        "description": service.description,
        "base_url": service.base_url,
        "auth_method": service.auth_method,
        "auth_params": service.auth_params,
        "owner": owner.user.email if owner is not None else "",
        "workspace": service.owner_workspace.public_id,
        "connector": service.connector or None,
        "extra_params": service.extra_params,
        "test_request": service.test_request or None,
        "pagination": service.pagination or None,
        "default_headers": service.default_headers,
        "source": service.source,
        "created_at": service.created_at,
        "updated_at": service.updated_at,
    }
    if detail:
        data["secret_params_set"] = sorted(service.get_secret_params())
        data["endpoints"] = service.endpoints
    return data


def _reload(membership: Membership, service: Service) -> Service:
    return get_service_for_member(membership, service.public_id)


@router.get("/services", response=list[ServiceOut], summary="Services of the organization")
def list_services(request: HttpRequest) -> list[dict[str, Any]]:
    """Every service of the caller's organization (services are visible org-wide)."""
    return [_out(s) for s in services_visible_to(membership=_membership(request))]


@router.post("/services", response={201: ServiceDetailOut}, summary="Create a service")
def create_service(request: HttpRequest, payload: ServiceIn) -> Status:
    """Created in the caller's personal workspace; naming a shared workspace is refused."""
    membership = _membership(request)
    data = payload.dict()
    workspace_id = data.pop("workspace")
    workspace = None
    if workspace_id is not None:
        workspace = membership.organization.workspaces.filter(public_id=workspace_id).first()
        if workspace is None:
            raise ValidationError({"workspace": svc.SHARED_WORKSPACE_REFUSED})
    service = svc.service_create(membership=membership, workspace=workspace, **data)
    return Status(201, _out(_reload(membership, service), detail=True))


@router.get("/services/{service_id}", response=ServiceDetailOut, summary="One service")
def get_service(request: HttpRequest, service_id: uuid.UUID) -> dict[str, Any]:
    return _out(get_service_for_member(_membership(request), service_id), detail=True)


@router.patch("/services/{service_id}", response=ServiceDetailOut, summary="Change a service")
def patch_service(request: HttpRequest, service_id: uuid.UUID, payload: ServicePatch) -> dict:
    """Owner or org admin. Fields left out keep their value; a secret left out is kept."""
    membership = _membership(request)
    service = get_service_for_member(membership, service_id, write=True)
    changes = payload.dict(exclude_unset=True)
    confirmed = bool(changes.pop("confirm_origin_change", False))
    method_changed = changes.get("auth_method", service.auth_method) != service.auth_method
    current = {
        "name": service.name,
        "description": service.description,
        "base_url": service.base_url,
        "auth_method": service.auth_method,
        "auth_params": {} if method_changed else dict(service.auth_params),
        "extra_params": service.extra_params,
        "test_request": service.test_request or None,
        "pagination": service.pagination or None,
        "default_headers": service.default_headers,
        "acknowledge_insecure": service.acknowledged_insecure,
    }
    merged = {**current, **{k: v for k, v in changes.items() if v is not None or k in (
        "test_request", "pagination")}}  # fmt: skip
    updated = svc.service_update(
        service=service, actor=membership, confirm_origin_change=confirmed, **merged
    )
    return _out(_reload(membership, updated), detail=True)


@router.delete("/services/{service_id}", response={204: None}, summary="Delete a service")
def delete_service(
    request: HttpRequest, service_id: uuid.UUID, delete_authentications: bool = False
) -> Status:
    """Owner or org admin. With authentications using it: 409 unless delete_authentications."""
    membership = _membership(request)
    service = get_service_for_member(membership, service_id, write=True)
    try:
        svc.service_delete(
            service=service, actor=membership, delete_authentications=delete_authentications
        )
    except ValidationError as exc:
        if exc.code == "confirm":
            message = exc.messages[0] + " " + CONFIRM_DELETE
            raise HttpError(409, message) from None
        raise
    return Status(204, None)


@router.get("/connectors", response=list[ConnectorOut], summary="The connector catalog")
def list_connectors(request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {
            "key": c.key,
            "name": c.name,
            "description": c.description,
            "base_url": c.base_url,
            "auth_method": c.auth_method,
            "docs_url": c.docs_url,
        }
        for c in load_catalog().values()
    ]


ROUTERS = [("", router)]
