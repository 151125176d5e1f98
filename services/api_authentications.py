"""The authentications JSON API (CONTRACT.md), mounted by traysvc.api.

Every answer is metadata: status, scopes, expiry, the last error in words — never a secret
(responses name which secret values are set, not what they are). Another organization's
authentication, and one outside the caller's workspaces, is a 404.
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

from services.access import get_authentication_for_member, get_service_for_member
from services.authentications import (
    authentication_create,
    authentication_delete,
    authentications_usable_by,
    public_values,
    resolve_target,
)
from services.forms_auth import WORKSPACE_UNKNOWN
from services.models import Authentication, Service
from services.oauth import OAuthFlowError, client_credentials_connect, oauth_flow_start
from services.refresh import REASON_MANUAL, RefreshError, authentication_refresh
from services.status import explain_status
from workspaces.models import Membership, Workspace

router = Router(tags=["authentications"])


class AuthenticationIn(Schema):
    model_config = ConfigDict(extra="forbid")

    service: uuid.UUID | None = None
    connector: str | None = None
    name: str
    workspace: uuid.UUID | None = None
    values: dict[str, Any] = {}


class OAuthStartIn(AuthenticationIn):
    """As AuthenticationIn, but `values` holds only non-secret extra parameter values: they fill
    {{auth.KEY}} in the OAuth URLs, and the grant's secrets come from the provider."""


class OAuthStartOut(Schema):
    authorize_url: str
    state: str


class AuthenticationOut(Schema):
    id: uuid.UUID
    name: str
    service: uuid.UUID | None
    connector: str | None
    workspace: uuid.UUID
    status: str
    scopes: list[str]
    expires_at: datetime | None
    last_refreshed_at: datetime | None
    last_error: str


class AuthenticationDetailOut(AuthenticationOut):
    status_explanation: str
    fix: str
    refresh_expires_at: datetime | None
    last_used_at: datetime | None
    last_checked_at: datetime | None
    values: dict[str, str]
    secrets_set: list[str]
    created_at: datetime
    updated_at: datetime


def _membership(request: HttpRequest) -> Membership:
    return request.membership  # type: ignore[attr-defined,no-any-return]


def _out(authentication: Authentication, *, detail: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": authentication.public_id,
        "name": authentication.name,
        "service": authentication.service.public_id if authentication.service_id else None,
        "connector": authentication.connector or None,
        "workspace": authentication.workspace.public_id,
        "status": authentication.status,
        "scopes": list(authentication.scopes or []),
        "expires_at": authentication.expires_at,
        "last_refreshed_at": authentication.last_refreshed_at,
        "last_error": authentication.last_error,
    }
    if detail:
        meaning, fix = explain_status(authentication.status)
        data.update(
            status_explanation=meaning,
            fix=fix,
            refresh_expires_at=authentication.refresh_expires_at,
            last_used_at=authentication.last_used_at,
            last_checked_at=authentication.last_checked_at,
            values=public_values(authentication),
            secrets_set=sorted(k for k, v in authentication.get_secrets().items() if v),
            created_at=authentication.created_at,
            updated_at=authentication.updated_at,
        )
    return data


def _workspace(membership: Membership, public_id: uuid.UUID | None) -> Workspace:
    """The named workspace of the caller's organization, else their personal one."""
    if public_id is None:
        return membership.personal_workspace
    workspace = Workspace.objects.filter(
        organization_id=membership.organization_id, public_id=public_id
    ).first()
    if workspace is None:
        raise ValidationError({"workspace": [WORKSPACE_UNKNOWN]})
    return workspace


def _service(membership: Membership, public_id: uuid.UUID | None) -> Service | None:
    return get_service_for_member(membership, public_id) if public_id is not None else None


def _reload(membership: Membership, authentication: Authentication) -> Authentication:
    return get_authentication_for_member(membership, authentication.public_id)


@router.get(
    "/authentications", response=list[AuthenticationOut], summary="Authentications you may use"
)
def list_authentications(request: HttpRequest) -> list[dict[str, Any]]:
    """Those in your personal workspace and the shared workspaces you belong to."""
    return [_out(a) for a in authentications_usable_by(membership=_membership(request))]


@router.post(
    "/authentications", response={201: AuthenticationDetailOut}, summary="Create an authentication"
)
def create_authentication(
    request: HttpRequest, payload: AuthenticationIn
) -> Status[dict[str, Any]]:
    """Token, basic, digest, OAuth1, SOAP values; an OAuth2 client-credentials service connects
    at once. (The authorization code grant starts at /authentications/oauth2/start.)"""
    membership = _membership(request)
    service = _service(membership, payload.service)
    workspace = _workspace(membership, payload.workspace)
    target = resolve_target(
        organization=membership.organization, service=service, connector=payload.connector
    )
    grant_type = (target.params or {}).get("grant_type") or "authorization_code"
    if target.method_key == "oauth2" and grant_type == "client_credentials" and target.service:
        try:
            authentication = client_credentials_connect(
                membership=membership, workspace=workspace, service=target.service,
                name=payload.name, values=payload.values,
            )  # fmt: skip
        except OAuthFlowError as exc:
            raise HttpError(422, exc.message) from exc
    else:
        authentication = authentication_create(
            membership=membership,
            workspace=workspace,
            service=service,
            connector=payload.connector,
            name=payload.name,
            values=payload.values,
        )
    return Status(201, _out(_reload(membership, authentication), detail=True))


@router.post(
    "/authentications/oauth2/start",
    response=OAuthStartOut,
    summary="Start an OAuth2 authorization code grant",
)
def start_oauth2(request: HttpRequest, payload: OAuthStartIn) -> dict[str, str]:
    """Send the user's browser to ``authorize_url``; the provider returns to /oauth2/callback,
    which creates the authentication for the same user and shows it."""
    membership = _membership(request)
    url, state = oauth_flow_start(
        membership=membership,
        workspace=_workspace(membership, payload.workspace),
        service=_service(membership, payload.service),
        connector=payload.connector,
        name=payload.name,
        return_to="api",
        values=payload.values,
    )
    return {"authorize_url": url, "state": state}


@router.get(
    "/authentications/{authentication_id}",
    response=AuthenticationDetailOut,
    summary="One authentication",
)
def get_authentication(request: HttpRequest, authentication_id: uuid.UUID) -> dict[str, Any]:
    membership = _membership(request)
    return _out(get_authentication_for_member(membership, authentication_id), detail=True)


@router.delete(
    "/authentications/{authentication_id}",
    response={204: None},
    summary="Delete an authentication",
)
def delete_authentication(request: HttpRequest, authentication_id: uuid.UUID) -> Status[None]:
    """An OAuth2 grant is revoked at the provider first (best effort)."""
    membership = _membership(request)
    authentication = get_authentication_for_member(membership, authentication_id)
    authentication_delete(authentication=authentication, actor=membership)
    return Status(204, None)


@router.post(
    "/authentications/{authentication_id}/refresh",
    response=AuthenticationDetailOut,
    summary="Refresh an OAuth2 grant now",
)
def refresh_authentication(request: HttpRequest, authentication_id: uuid.UUID) -> dict[str, Any]:
    """409 with the reason when it could not be refreshed (the status says what happens next)."""
    membership = _membership(request)
    authentication = get_authentication_for_member(membership, authentication_id)
    try:
        authentication_refresh(
            authentication_id=authentication.pk, reason=REASON_MANUAL, actor=membership.user
        )
    except RefreshError as exc:
        raise HttpError(409, exc.message) from exc
    return _out(_reload(membership, authentication), detail=True)


ROUTERS = [("", router)]
