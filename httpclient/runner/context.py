"""Loading what a call needs, in a constant number of queries, and checking it belongs together.

One query for the service (none when the caller passes the instance), one for the
authentication with the "may this member use it" test folded in as an annotation. Then the
auth method, its params, the secrets, the template values and the redactor, all in memory.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from httpclient.redaction import Redactor
from httpclient.runner.lookup import authentication_with_service, service_by_public_id
from httpclient.runner.types import (
    AUTHENTICATION_NOT_FOUND,
    AUTHENTICATION_OTHER_SERVICE,
    AUTHENTICATION_REQUIRED,
    KIND_AUTH,
    KIND_NOT_FOUND,
    SERVICE_NOT_FOUND,
    Call,
    CallRejected,
)
from services import templating
from services.auth_methods import AuthMethod, AuthParamsError, ParamsModel, get_method
from services.models import Authentication, Service
from traysvc.egress.sandbox import sandbox_exemption
from workspaces.models import Membership, WorkspaceKind, WorkspaceMember

Origin = tuple[str, str, int]
# An egress exemption: the origin, and the path prefix it covers.
Exemption = tuple[str, str, int, str]

AUTH_PARAMS_INVALID = "The service's authentication settings are not valid: {errors}"
CONNECTOR_MISSING = "This service uses connector {key!r}, which is not in the catalog."
DEFAULT_PORTS = {"http": 80, "https": 443}
SANDBOX_PREFIX = "/sandbox/"


@dataclass
class Context:
    """Everything about a call that comes from the database, decrypted and parsed."""

    organization_id: int
    membership: Membership | None
    service: Service
    authentication: Authentication | None
    method: AuthMethod
    params: ParamsModel
    secrets: dict[str, str]
    template_auth: dict[str, Any]
    template_service: dict[str, Any]
    redactor: Redactor
    allow_origins: frozenset[Exemption] = field(default_factory=frozenset)

    @property
    def user(self) -> Any:
        return self.membership.user if self.membership is not None else None


def origin_of(url: Any) -> Origin:
    """(scheme, host, port) of an httpx.URL, default port filled in."""
    return (url.scheme, url.host.lower(), url.port or DEFAULT_PORTS.get(url.scheme, 0))


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def _member_may_use(authentication: Authentication, membership: Membership) -> bool:
    """The member's personal workspace, or a shared one they belong to (as in workspaces).

    The workspace's kind and owner come joined with the authentication (ws_kind, ws_owner_id)
    when it was looked up here; only a shared workspace costs a query."""
    if hasattr(authentication, "ws_kind"):
        kind, owner_id = authentication.ws_kind, authentication.ws_owner_id
    else:
        kind, owner_id = authentication.workspace.kind, authentication.workspace.owner_id
    if kind == WorkspaceKind.PERSONAL:
        return owner_id == membership.pk
    return WorkspaceMember.objects.filter(
        workspace_id=authentication.workspace_id, membership_id=membership.pk
    ).exists()


def _service(org_id: int, service_id: uuid.UUID | None) -> Service:
    found = service_by_public_id(org_id, service_id) if service_id is not None else None
    if found is None:
        raise CallRejected(SERVICE_NOT_FOUND, field="service", kind=KIND_NOT_FOUND)
    return found


def _connector_key(service: Service) -> str:
    return str((service.auth_params or {}).get("connector") or service.connector or "")


def _accepts(service: Service, authentication: Authentication) -> bool:
    if authentication.service_id is not None:
        return authentication.service_id == service.pk
    return service.auth_method == "preexisting" and authentication.connector == _connector_key(
        service
    )


def load_objects(call: Call) -> tuple[int, Service, Authentication | None]:
    """The organization id, service and authentication of a call, or CallRejected (404/422).

    The hot path (ids, a personal authentication made for the service) is one query: the
    authentication with its service and its workspace's kind and owner (runner.lookup)."""
    membership = call.membership
    service = call.service
    if membership is not None:
        org_id = membership.organization_id
    elif call.organization is not None:
        org_id = call.organization.pk
    elif isinstance(service, Service):
        org_id = service.organization_id
    else:
        raise CallRejected(SERVICE_NOT_FOUND, field="service", kind=KIND_NOT_FOUND)
    if isinstance(service, Service) and service.organization_id != org_id:
        raise CallRejected(SERVICE_NOT_FOUND, field="service", kind=KIND_NOT_FOUND)
    service_id = None if isinstance(service, Service) else _uuid(service)

    authentication = call.authentication
    if authentication is None:
        if not isinstance(service, Service):
            service = _service(org_id, service_id)
        if service.auth_method != "none":
            raise CallRejected(AUTHENTICATION_REQUIRED, field="authentication")
        return org_id, service, None

    if isinstance(authentication, Authentication):
        found = authentication if authentication.organization_id == org_id else None
    else:
        auth_id = _uuid(authentication)
        found = None
        if auth_id is not None:
            found = authentication_with_service(org_id, auth_id)
    if found is None or (membership is not None and not _member_may_use(found, membership)):
        if not isinstance(service, Service):
            _service(org_id, service_id)  # an unknown service is reported first
        raise CallRejected(AUTHENTICATION_NOT_FOUND, field="authentication", kind=KIND_NOT_FOUND)
    authentication = found

    if not isinstance(service, Service):
        joined = authentication.service if authentication.service_id else None
        if joined is not None and joined.public_id == service_id:
            service = joined  # the usual case: no second query
        else:
            service = _service(org_id, service_id)
    if not _accepts(service, authentication):
        raise CallRejected(
            AUTHENTICATION_OTHER_SERVICE.format(service=service.name), field="authentication"
        )
    if membership is not None:
        # Same organization (checked above): saves the query authentication_mark_used makes.
        authentication.organization = membership.organization
    return org_id, service, authentication


def resolve_method(service: Service) -> tuple[AuthMethod, ParamsModel]:
    """The method that applies the credential and its parsed params (a connector's, if any)."""
    try:
        method = get_method(service.auth_method)
    except KeyError as exc:
        raise CallRejected(str(exc), field="auth_method", kind=KIND_AUTH) from None
    raw = service.auth_params or {}
    from_connector = False
    if method.uses_connector:
        from services.catalog import get_connector

        key = _connector_key(service)
        connector = get_connector(key)
        if connector is None:
            raise CallRejected(CONNECTOR_MISSING.format(key=key), kind=KIND_AUTH)
        method = get_method(connector.auth_method)
        raw = connector.auth_params
        from_connector = True
    try:
        # A connector's params describe the provider only: no client id (each service that
        # runs a grant has its own). Applying a grant's token does not need one.
        return method, method.parse_params(raw, connector=from_connector)
    except AuthParamsError as exc:
        raise CallRejected(AUTH_PARAMS_INVALID.format(errors=exc), kind=KIND_AUTH) from None


def _secret_extra_keys(service: Service) -> list[str]:
    return [p.get("key") for p in service.extra_params or [] if p.get("secret") and p.get("key")]


def build_context(call: Call) -> Context:
    """Load, check and decrypt; raises CallRejected with the words for the user."""
    org_id, service, authentication = load_objects(call)
    method, params = resolve_method(service)
    stored: dict[str, Any] = authentication.get_secrets() if authentication is not None else {}
    values: dict[str, Any] = dict(authentication.values or {}) if authentication else {}
    service_secrets = service.get_secret_params()
    secrets: dict[str, str] = {k: v for k, v in values.items() if isinstance(v, str)}
    secrets.update({k: v for k, v in stored.items() if isinstance(v, str)})
    secrets.update({k: v for k, v in service_secrets.items() if isinstance(v, str)})

    # Everything stored encrypted is secret except the method's plain fields (a user name),
    # plus what the method derives from the secrets (Basic headers, encoded forms).
    plain = {f.key for f in method.credential_fields if not f.secret}
    labelled = {
        k: v
        for k, v in {**stored, **service_secrets}.items()
        if isinstance(v, str) and v and k not in plain
    }
    for key in _secret_extra_keys(service):
        if isinstance(values.get(key), str) and values[key]:
            labelled[key] = values[key]
    redactor = Redactor(labelled).with_secrets(method.secret_values(params, secrets))

    template_values = {
        **values,
        **{k: stored[k] for k in _secret_extra_keys(service) if k in stored},
    }
    return Context(
        organization_id=org_id,
        membership=call.membership,
        service=service,
        authentication=authentication,
        method=method,
        params=params,
        secrets=secrets,
        template_auth=templating.auth_values(service.extra_params or [], template_values),
        template_service=templating.service_values(
            name=service.name, slug=service.slug, base_url=service.base_url
        ),
        redactor=redactor,
    )


def refreshed(context: Context, authentication: Authentication) -> None:
    """Take a refreshed authentication's secrets; the redactor keeps masking the old ones too."""
    stored = authentication.get_secrets()
    context.authentication = authentication
    context.secrets.update({k: v for k, v in stored.items() if isinstance(v, str)})
    plain = {f.key for f in context.method.credential_fields if not f.secret}
    new = {k: v for k, v in stored.items() if isinstance(v, str) and v and k not in plain}
    context.redactor = context.redactor.with_secrets(new).with_secrets(
        context.method.secret_values(context.params, context.secrets)
    )


def sandbox_origins(base_origin: Origin) -> frozenset[Exemption]:
    """The app's one self-exemption (traysvc.egress.sandbox), for this service's base origin."""
    scheme, host, port = base_origin
    return sandbox_exemption(f"{scheme}://{host}:{port}/")
