"""Writes and reads of authentications that are not OAuth2 grants (those start in oauth.py).

Storage: every credential value of the auth method (secret or not: ``username`` travels with
``password``) and every *secret* extra parameter go into the encrypted ``secrets`` blob;
non-secret extra parameter values go into ``values`` (they fill ``{{auth.KEY}}`` templates).
Secrets are write-only: an update with a blank secret keeps the stored one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from services.auth_methods import AuthMethod, AuthParamsError, get_method
from services.auth_methods.base import FIELD_REQUIRED, NON_FIELD
from services.catalog import get_connector
from services.models import Authentication, AuthStatus, Service
from services.schemas import ExtraParam
from workspaces.models import Membership, Organization, Workspace, WorkspaceKind, WorkspaceMember
from workspaces.services import audit

logger = logging.getLogger(__name__)

NOT_YOUR_WORKSPACE = (
    "You can only add authentications to your personal workspace or a shared workspace you "
    "belong to."
)
OTHER_ORGANIZATION = "This belongs to another organization."
SERVICE_OR_CONNECTOR = "Choose a service or a connector (exactly one)."
CONNECTOR_UNKNOWN = "There is no connector “{key}” in the catalog."
PREEXISTING_WITHOUT_CONNECTOR = "This service does not name the connector it uses."
USE_CONNECT = "OAuth2 authentications are made by connecting to the provider: use Connect instead."
NAME_REQUIRED = "Give the authentication a name."
NAME_TAKEN = "An authentication named “{name}” already exists in this workspace."
VALUE_PATTERN = "This value does not have the expected format ({pattern})."
VALUE_UNKNOWN = "This service has no parameter with this name."
VALUE_NOT_TEXT = "Enter text."
VALUE_ENTER_AFTER_CONNECT = (
    "This parameter is secret: enter it by editing the authentication once it is connected "
    "(a sign-in never carries secrets)."
)


@dataclass(frozen=True)
class Target:
    """What an authentication is for: a service, or (service None) a catalog connector."""

    organization: Organization
    service: Service | None
    connector: str
    method_key: str
    params: dict[str, Any] = field(repr=False)
    extra_params: list[ExtraParam] = field(default_factory=list)

    @property
    def method(self) -> AuthMethod:
        return get_method(self.method_key)


def _actor_user(actor: Membership | AbstractBaseUser | None) -> AbstractBaseUser | None:
    return actor.user if isinstance(actor, Membership) else actor


def _extra_params(raw: list[Any]) -> list[ExtraParam]:
    params = []
    for item in raw or []:
        try:
            params.append(item if isinstance(item, ExtraParam) else ExtraParam.model_validate(item))
        except ValueError:
            logger.warning("skipping an invalid extra parameter definition %r", item)
    return params


def connector_target(*, organization: Organization, key: str) -> Target:
    connector = get_connector(key) if key else None
    if connector is None:
        raise ValidationError({"connector": [CONNECTOR_UNKNOWN.format(key=key)]})
    return Target(
        organization=organization,
        service=None,
        connector=connector.key,
        method_key=connector.auth_method,
        params=dict(connector.auth_params),
        extra_params=list(connector.extra_params),
    )


def resolve_target(
    *, organization: Organization, service: Service | None = None, connector: str | None = None
) -> Target:
    """What an authentication is for; a pre-existing service means its connector."""
    if (service is None) == (not connector):
        raise ValidationError({NON_FIELD: [SERVICE_OR_CONNECTOR]})
    if service is None:
        return connector_target(organization=organization, key=connector or "")
    if service.organization_id != organization.pk:
        raise PermissionDenied(OTHER_ORGANIZATION)
    if get_method(service.auth_method).uses_connector:
        key = (service.auth_params or {}).get("connector") or service.connector
        if not key:
            raise ValidationError({"service": [PREEXISTING_WITHOUT_CONNECTOR]})
        return connector_target(organization=organization, key=key)
    return Target(
        organization=organization,
        service=service,
        connector="",
        method_key=service.auth_method,
        params=dict(service.auth_params or {}),
        extra_params=_extra_params(service.extra_params),
    )


def target_of(authentication: Authentication) -> Target:
    """The Target of a stored authentication."""
    return resolve_target(
        organization=authentication.organization,
        service=authentication.service,
        connector=None if authentication.service_id else authentication.connector,
    )


def effective_method_key(authentication: Authentication) -> str:
    """The auth method that applies this authentication ("" when its connector is gone)."""
    if authentication.service_id is not None:
        key = authentication.service.auth_method
        if key != "preexisting":
            return key
        connector_key = (authentication.service.auth_params or {}).get("connector", "")
    else:
        connector_key = authentication.connector
    connector = get_connector(connector_key) if connector_key else None
    return connector.auth_method if connector is not None else ""


def check_workspace(*, membership: Membership, workspace: Workspace) -> None:
    """The member's personal workspace, or a shared one they belong to; else PermissionDenied."""
    if workspace.organization_id != membership.organization_id:
        raise PermissionDenied(NOT_YOUR_WORKSPACE)
    if workspace.kind == WorkspaceKind.PERSONAL:
        if workspace.owner_id != membership.pk:
            raise PermissionDenied(NOT_YOUR_WORKSPACE)
        return
    if not WorkspaceMember.objects.filter(workspace=workspace, membership=membership).exists():
        raise PermissionDenied(NOT_YOUR_WORKSPACE)


def check_name(*, workspace: Workspace, name: str, exclude_pk: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": [NAME_REQUIRED]})
    taken = Authentication.objects.filter(workspace=workspace, name=name)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise ValidationError({"name": [NAME_TAKEN.format(name=name)]})
    return name


def _secret_keys(target: Target) -> set[str]:
    keys = {f.key for f in target.method.credential_fields}
    keys |= {p.key for p in target.extra_params if p.secret}
    return keys


def clean_values(
    target: Target, values: dict[str, Any], *, existing: dict[str, Any] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """(secrets, values) from what the user entered; raises ValidationError per field.

    ``existing`` (an update) supplies the stored secrets: a blank secret field keeps them.
    """
    if not isinstance(values, dict):
        raise ValidationError({"values": [VALUE_NOT_TEXT]})
    existing = existing or {}
    secret_keys = _secret_keys(target)
    merged = dict(values)
    for key in secret_keys:
        if not merged.get(key) and existing.get(key):
            merged[key] = existing[key]
    errors: dict[str, list[str]] = {}
    try:
        secrets: dict[str, str] = dict(target.method.validate_credentials(merged))
    except AuthParamsError as exc:
        errors.update(exc.errors)
        secrets = {}
    plain: dict[str, str] = {}
    known = {f.key for f in target.method.credential_fields}
    for param in target.extra_params:
        known.add(param.key)
        raw = merged.get(param.key)
        if raw is not None and not isinstance(raw, str):
            errors.setdefault(param.key, []).append(VALUE_NOT_TEXT)
            continue
        value = (raw or "").strip()
        if not value and param.default is not None:
            value = param.default
        if not value:
            if param.required:
                errors.setdefault(param.key, []).append(FIELD_REQUIRED)
            continue
        if not param.matches(value):
            errors.setdefault(param.key, []).append(VALUE_PATTERN.format(pattern=param.pattern))
            continue
        (secrets if param.secret else plain)[param.key] = value
    for key, raw in values.items():
        if key not in known and raw not in (None, ""):
            errors.setdefault(key, []).append(VALUE_UNKNOWN)
    if errors:
        raise ValidationError(errors)
    return secrets, plain


def clean_grant_values(target: Target, values: dict[str, Any] | None) -> dict[str, str]:
    """The non-secret extra parameter values given before an OAuth2 sign-in, validated.

    They travel with the flow (and fill the OAuth URLs' templates), so a secret one is
    refused here: it is entered on the authentication after connecting.
    """
    values = values or {}
    if not isinstance(values, dict):
        raise ValidationError({"values": [VALUE_NOT_TEXT]})
    secret = {p.key for p in target.extra_params if p.secret}
    given = sorted(k for k, v in values.items() if k in secret and v not in (None, ""))
    if given:
        raise ValidationError({key: [VALUE_ENTER_AFTER_CONNECT] for key in given})
    public = replace(target, extra_params=[p for p in target.extra_params if not p.secret])
    given_values = {k: v for k, v in values.items() if k not in secret}
    _secrets, plain = clean_values(public, given_values)
    return plain


def new_authentication(
    *,
    membership: Membership,
    workspace: Workspace,
    target: Target,
    name: str,
    values: dict[str, Any],
    secrets: dict[str, Any],
) -> Authentication:
    """An unsaved, active authentication for a target, its secrets encrypted."""
    authentication = Authentication(
        organization=membership.organization,
        workspace=workspace,
        service=target.service,
        connector=target.connector,
        name=name,
        status=AuthStatus.ACTIVE,
        values=values,
        created_by=membership.user,
    )
    authentication.set_secrets(secrets)
    return authentication


def save_new_authentication(authentication: Authentication) -> None:
    """Validate and insert a new authentication; a name taken meanwhile is a field error."""
    authentication.full_clean()
    try:
        with transaction.atomic():
            authentication.save()
    except IntegrityError as exc:  # a concurrent create took the name
        raise ValidationError({"name": [NAME_TAKEN.format(name=authentication.name)]}) from exc


@transaction.atomic
def authentication_create(
    *,
    membership: Membership,
    workspace: Workspace,
    service: Service | None = None,
    connector: str | None = None,
    name: str,
    values: dict[str, Any],
) -> Authentication:
    """A token / basic / digest / oauth1 / soap / none authentication, validated and encrypted."""
    check_workspace(membership=membership, workspace=workspace)
    target = resolve_target(
        organization=membership.organization, service=service, connector=connector
    )
    if target.method_key == "oauth2":
        raise ValidationError({NON_FIELD: [USE_CONNECT]})
    name = check_name(workspace=workspace, name=name)
    secrets, plain = clean_values(target, values)
    authentication = new_authentication(
        membership=membership, workspace=workspace, target=target, name=name, values=plain,
        secrets=secrets,
    )  # fmt: skip
    save_new_authentication(authentication)
    audit(
        organization=membership.organization,
        actor=membership.user,
        action="authentication.create",
        target_type="authentication",
        target_id=authentication.public_id,
        details={
            "name": name,
            "service": str(target.service.public_id) if target.service else None,
            "connector": target.connector or None,
            "method": target.method_key,
        },
    )
    return authentication


@transaction.atomic
def authentication_update(
    *,
    authentication: Authentication,
    actor: Membership | AbstractBaseUser,
    name: str | None = None,
    values: dict[str, Any] | None = None,
) -> Authentication:
    """Rename and/or change values; a blank secret keeps the stored one ("replace", not "show")."""
    user = _actor_user(actor)
    authentication = (
        Authentication.objects.select_for_update(of=("self",))
        .select_related("organization", "service")
        .get(pk=authentication.pk)
    )
    details: dict[str, Any] = {}
    fields = ["updated_at"]
    if name is not None and name.strip() != authentication.name:
        authentication.name = check_name(
            workspace=authentication.workspace, name=name, exclude_pk=authentication.pk
        )
        details["name"] = authentication.name
        fields.append("name")
    replaced: list[str] = []
    if values is not None:
        target = target_of(authentication)
        stored = authentication.get_secrets()
        secrets, plain = clean_values(target, values, existing=stored)
        grant_keys = set(target.method.stored_secret_keys)
        replaced = sorted(k for k, v in secrets.items() if stored.get(k) != v)
        replaced += sorted(k for k in stored if k not in secrets and k not in grant_keys)
        secrets.update({k: v for k, v in stored.items() if k in grant_keys})
        authentication.set_secrets(secrets)
        authentication.values = plain
        fields += ["secrets", "values"]
    authentication.full_clean()
    authentication.save(update_fields=fields)
    if details or values is not None:
        audit(
            organization=authentication.organization,
            actor=user,
            action="authentication.replace" if replaced else "authentication.update",
            target_type="authentication",
            target_id=authentication.public_id,
            details={**details, "replaced": replaced},
        )
    if replaced and authentication.status in (AuthStatus.REVOKED, AuthStatus.NEEDS_REAUTH,
                                               AuthStatus.EXPIRED):  # fmt: skip
        from services.status import authentication_transition

        authentication_transition(authentication=authentication, status=AuthStatus.ACTIVE)
    return authentication


def authentication_delete(
    *, authentication: Authentication, actor: Membership | AbstractBaseUser
) -> None:
    """Delete it; an OAuth2 grant is revoked at the provider first (best effort, RFC 7009)."""
    from services.grants import grant_revoke

    if effective_method_key(authentication) == "oauth2":
        grant_revoke(authentication=authentication)
    _delete(authentication=authentication, actor=actor)


@transaction.atomic
def _delete(*, authentication: Authentication, actor: Membership | AbstractBaseUser) -> None:
    audit(
        organization=authentication.organization,
        actor=_actor_user(actor),
        action="authentication.delete",
        target_type="authentication",
        target_id=authentication.public_id,
        details={"name": authentication.name},
    )
    authentication.delete()


def authentications_usable_by(
    *, membership: Membership, service: Service | None = None
) -> QuerySet[Authentication]:
    """Authentications in the member's workspaces; for a service, those that fit it.

    A pre-existing service accepts the authentications of its connector.
    """
    personal = Q(workspace__kind=WorkspaceKind.PERSONAL, workspace__owner=membership)
    shared = Q(
        workspace__kind=WorkspaceKind.SHARED,
        workspace__in=WorkspaceMember.objects.filter(membership=membership).values("workspace"),
    )
    qs = Authentication.objects.filter(organization_id=membership.organization_id).filter(
        personal | shared
    )
    if service is not None:
        fits = Q(service=service)
        if service.auth_method == "preexisting":
            key = (service.auth_params or {}).get("connector") or service.connector
            if key:
                fits |= Q(service__isnull=True, connector=key)
        qs = qs.filter(fits)
    return qs.select_related("service", "workspace", "organization").order_by("name", "pk")


def public_values(authentication: Authentication, target: Target | None = None) -> dict[str, str]:
    """The stored values of the extra parameters that are not secret in the current definition.

    Only those may be shown (API, pages): a value stored while its parameter was not yet
    secret, or of a parameter since removed, is never echoed.
    """
    if target is None:
        try:
            target = target_of(authentication)
        except (ValidationError, PermissionDenied):
            return {}  # its connector left the catalog: nothing is known to be public
    public = {p.key for p in target.extra_params if not p.secret}
    return {k: str(v) for k, v in (authentication.values or {}).items() if k in public}


def authentication_form_values(authentication: Authentication) -> dict[str, str]:
    """The values a form may show again: non-secret credential fields and extra params."""
    target = target_of(authentication)
    shown: dict[str, str] = public_values(authentication, target)
    public = {f.key for f in target.method.credential_fields if not f.secret}
    if public:
        secrets = authentication.get_secrets()
        shown.update({k: secrets[k] for k in public if k in secrets})
    return shown
