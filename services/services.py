"""Writes for service definitions: each function is one user action, atomic, audited.

The form views and the JSON API both hand their input here, so a definition is validated in
one place: the auth method's params (through the registry), extra parameters, test request,
pagination, headers and every `{{auth.KEY}}` template. Errors are a ValidationError keyed by
field path ("auth_params.token_url", "extra_params.0.key", "test_request.path").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from services import templating
from services.auth_methods import REGISTRY, AuthParamsError, get_method
from services.models import Service, Source
from services.openapi_import import MAX_ENDPOINTS, Endpoint
from services.schemas import ExtraParam, Pagination, TestRequest, check_header_name, check_url
from services.service_changes import check_origin_change, move_secret_values
from workspaces.models import Membership, Workspace, WorkspaceKind
from workspaces.services import audit

SHARED_WORKSPACE_REFUSED = (
    "Services are created only in your personal workspace; the whole organization can then "
    "use them. Shared workspaces hold authentications, not services."
)
NAME_REQUIRED = "Enter a name for the service."
NAME_TOO_LONG = "Use at most 120 characters."
NAME_TAKEN = "A service named “{name}” already exists in this organization: choose another name."
BASE_URL_REQUIRED = "Enter the API's base URL, e.g. https://api.example.com/v1."
BASE_URL_INVALID = "The base URL {problem}."
BASE_URL_TOO_LONG = "Use at most 500 characters."
UNKNOWN_AUTH_METHOD = "Choose one of: {choices}."
# No longer raised here: the pre-existing method's own check (preexisting.CONNECTOR_UNKNOWN)
# refuses a connector that is not in the catalog. Kept because callers compare against it.
CONNECTOR_UNKNOWN = "There is no connector “{key}” in the catalog."
NOT_A_LIST = "Enter a list."
NOT_AN_OBJECT = "Enter an object."
EXTRA_PARAM_DUPLICATE = "The key “{key}” is used twice."
HEADER_AUTHORIZATION = "Authorization is set by the auth method: do not add it as a header."
HEADER_VALUE_INVALID = "Header values are text without line breaks."
HEADER_DUPLICATE = "The header {name} is given twice (names are case-insensitive)."
HEADER_SENSITIVE = (
    "{name} looks like it carries a credential, and a service's headers are shown to the whole "
    "organization. Let the auth method send it (e.g. a token placed in a custom header), or add "
    "a secret extra parameter and write {{{{auth.KEY}}}} here."
)
TOO_MANY_ENDPOINTS = "At most {limit} endpoints."
DELETE_NEEDS_CONFIRMATION = (
    "{count} authentication(s) use this service. Confirm to delete them together with the service."
)
TRANSFER_SAME_OWNER = "This service already belongs to {email}."
TRANSFER_OTHER_ORG = "Choose a member of this organization."


@dataclass
class Definition:
    """A validated service definition, ready to store. `secrets` holds only new values."""

    name: str
    description: str
    base_url: str
    auth_method: str
    auth_params: dict[str, Any]
    secrets: dict[str, str]
    extra_params: list[dict[str, Any]]
    default_headers: dict[str, str]
    test_request: dict[str, str]
    pagination: dict[str, Any]
    endpoints: list[dict[str, str]]
    connector: str
    acknowledged_insecure: bool


def _add(errors: dict[str, list[str]], key: str, message: str) -> None:
    messages = errors.setdefault(key, [])
    if message not in messages:
        messages.append(message)


def _pydantic(errors: dict[str, list[str]], exc: PydanticValidationError, prefix: str) -> None:
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        _add(errors, loc or "__all__", err["msg"])


def _clean_extra_params(raw: Any, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        _add(errors, "extra_params", NOT_A_LIST)
        return []
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, row in enumerate(raw):
        try:
            param = ExtraParam.model_validate(row)
        except PydanticValidationError as exc:
            _pydantic(errors, exc, f"extra_params.{index}")
            continue
        if param.key in seen:
            _add(errors, f"extra_params.{index}.key", EXTRA_PARAM_DUPLICATE.format(key=param.key))
        seen.add(param.key)
        cleaned.append(param.model_dump(mode="json"))
    return cleaned


# Header names that carry credentials: a literal value there would be shown org-wide.
SENSITIVE_HEADER_NAMES = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
SENSITIVE_HEADER_WORDS = ("token", "secret", "key", "password")


def is_sensitive_header(name: str) -> bool:
    """Does this header name look like it carries a credential?"""
    lowered = name.lower()
    return lowered in SENSITIVE_HEADER_NAMES or any(w in lowered for w in SENSITIVE_HEADER_WORDS)


def _uses_secret_param(value: str, secret_keys: set[str]) -> bool:
    """True when the value takes (part of) itself from a secret extra parameter."""
    try:
        refs = templating.template_keys(value)
    except templating.TemplateError:
        return False  # reported as a malformed template by validate_templates
    return any(ns == templating.AUTH and key in secret_keys for ns, key in refs)


def _clean_headers(
    raw: Any, errors: dict[str, list[str]], params: list[dict[str, Any]]
) -> dict[str, str]:
    """Default headers; a credential-looking one must take its value from a secret param."""
    if not raw:
        return {}
    if not isinstance(raw, Mapping):
        _add(errors, "default_headers", NOT_AN_OBJECT)
        return {}
    cleaned: dict[str, str] = {}
    seen: set[str] = set()
    secret_keys = {str(p["key"]) for p in params if p.get("secret")}
    for name, value in raw.items():
        key = f"default_headers.{name}"
        try:
            check_header_name(str(name))
        except PydanticCustomError as exc:
            _add(errors, key, exc.message())
            continue
        if name.lower() == "authorization":
            _add(errors, key, HEADER_AUTHORIZATION)
        elif name.lower() in seen:
            _add(errors, key, HEADER_DUPLICATE.format(name=name))
        elif not isinstance(value, str) or "\r" in value or "\n" in value:
            _add(errors, key, HEADER_VALUE_INVALID)
        elif is_sensitive_header(name) and not _uses_secret_param(value, secret_keys):
            _add(errors, key, HEADER_SENSITIVE.format(name=name))
        seen.add(name.lower())
        cleaned[name] = value if isinstance(value, str) else ""
    return cleaned


def _clean_optional(model: type[BaseModel], raw: Any, key: str, errors: dict) -> dict[str, Any]:
    if raw in (None, {}):
        return {}
    try:
        return model.model_validate(raw).model_dump(mode="json", exclude_none=True)
    except PydanticValidationError as exc:
        _pydantic(errors, exc, key)
        return {}


def _clean_endpoints(raw: Any, errors: dict[str, list[str]]) -> list[dict[str, str]]:
    if not raw:
        return []
    if not isinstance(raw, list):
        _add(errors, "endpoints", NOT_A_LIST)
        return []
    if len(raw) > MAX_ENDPOINTS:
        _add(errors, "endpoints", TOO_MANY_ENDPOINTS.format(limit=MAX_ENDPOINTS))
        return []
    out = []
    for index, item in enumerate(raw):
        try:
            out.append(Endpoint.model_validate(item).model_dump())
        except PydanticValidationError as exc:
            _pydantic(errors, exc, f"endpoints.{index}")
    return out


def _clean_auth(
    auth_method: str,
    auth_params: Any,
    *,
    acknowledge_insecure: bool,
    existing_secrets: Mapping[str, str],
    errors: dict[str, list[str]],
) -> tuple[dict[str, Any], dict[str, str], str]:
    """(non-secret params, new secret values, connector key) for the chosen method."""
    if auth_method not in REGISTRY:
        _add(errors, "auth_method", UNKNOWN_AUTH_METHOD.format(choices=", ".join(REGISTRY)))
        return {}, {}, ""
    method = get_method(auth_method)
    params = auth_params if auth_params is not None else {}
    try:
        model = method.validate_service_params(
            params, acknowledge_insecure=acknowledge_insecure, existing_secrets=existing_secrets
        )
    except AuthParamsError as exc:
        for key, messages in exc.errors.items():
            target = key if key in ("acknowledge_insecure",) else f"auth_params.{key}"
            if key == "__all__":
                target = "auth_params"
            for message in messages:
                _add(errors, target, message)
        return {}, {}, ""
    public = model.model_dump(mode="json", exclude_none=True)
    _public, secret = method.split_params(params)
    secrets = {k: v for k, v in secret.items() if isinstance(v, str) and v}
    # The pre-existing method itself checks that its connector is in the catalog (apps.py).
    connector = str(public.get("connector", "")) if method.uses_connector else ""
    return public, secrets, connector


def _strings(value: Any, prefix: str) -> dict[str, str]:
    if isinstance(value, str):
        return {prefix: value}
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(_strings(item, f"{prefix}.{key}"))
        return out
    if isinstance(value, list):
        out = {}
        for index, item in enumerate(value):
            out.update(_strings(item, f"{prefix}.{index}"))
        return out
    return {}


def clean_definition(
    *,
    organization_id: int,
    name: str,
    base_url: str,
    auth_method: str,
    description: str = "",
    auth_params: Mapping[str, Any] | None = None,
    extra_params: list[Any] | None = None,
    default_headers: Mapping[str, Any] | None = None,
    test_request: Mapping[str, Any] | None = None,
    pagination: Mapping[str, Any] | None = None,
    endpoints: list[Any] | None = None,
    acknowledge_insecure: bool = False,
    instance: Service | None = None,
) -> Definition:
    """Validate everything a service is made of; raises ValidationError keyed by field path."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        _add(errors, "name", NAME_REQUIRED)
    elif len(name) > 120:
        _add(errors, "name", NAME_TOO_LONG)
    else:
        taken = Service.objects.filter(organization_id=organization_id, name__iexact=name)
        if instance is not None:
            taken = taken.exclude(pk=instance.pk)
        if taken.exists():
            _add(errors, "name", NAME_TAKEN.format(name=name))
    base_url = (base_url or "").strip().rstrip("/")
    if not base_url:
        _add(errors, "base_url", BASE_URL_REQUIRED)
    elif len(base_url) > 500:
        _add(errors, "base_url", BASE_URL_TOO_LONG)
    else:
        try:
            check_url(base_url, allow_query=False)
        except PydanticCustomError as exc:
            _add(errors, "base_url", BASE_URL_INVALID.format(problem=exc.message()))
    existing: Mapping[str, str] = {}
    if instance is not None and instance.auth_method == auth_method:
        existing = instance.get_secret_params()
    public, secrets, connector = _clean_auth(
        auth_method, auth_params, acknowledge_insecure=acknowledge_insecure,
        existing_secrets=existing, errors=errors,
    )  # fmt: skip
    params = _clean_extra_params(extra_params, errors)
    headers = _clean_headers(default_headers, errors, params)
    test = _clean_optional(TestRequest, test_request, "test_request", errors)
    pages = _clean_optional(Pagination, pagination, "pagination", errors)
    endpoint_rows = _clean_endpoints(endpoints, errors)
    templated = {"base_url": base_url, "test_request.path": test.get("path", "")}
    templated.update(_strings(headers, "default_headers"))
    templated.update(_strings(public, "auth_params"))
    for key, messages in templating.validate_templates(templated, extra_params=params).items():
        if key == "base_url" and "base_url" in errors:
            continue
        for message in messages:
            _add(errors, key, message)
    if errors:
        raise ValidationError(errors)
    insecure = bool(get_method(auth_method).discouraged and acknowledge_insecure)
    return Definition(
        name=name, description=(description or "").strip(), base_url=base_url,
        auth_method=auth_method, auth_params=public, secrets=secrets, extra_params=params,
        default_headers=headers, test_request=test, pagination=pages, endpoints=endpoint_rows,
        connector=connector, acknowledged_insecure=insecure,
    )  # fmt: skip


def _unique_slug(organization_id: int, name: str) -> str:
    base = slugify(name)[:100] or "service"
    slug, n = base, 2
    while Service.objects.filter(organization_id=organization_id, slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _store(service: Service, definition: Definition, *, keep_secrets: Mapping[str, str]) -> None:
    method = get_method(definition.auth_method)
    secrets = {k: v for k, v in keep_secrets.items() if k in method.secret_param_keys and v}
    secrets.update(definition.secrets)
    for attr in (
        "name", "description", "base_url", "auth_method", "auth_params", "extra_params",
        "default_headers", "test_request", "pagination", "connector", "acknowledged_insecure",
    ):  # fmt: skip
        setattr(service, attr, getattr(definition, attr))
    service.set_secret_params(secrets)
    service.full_clean()
    try:
        with transaction.atomic():
            service.save()
    except IntegrityError as exc:  # a concurrent save took the name
        raise ValidationError({"name": NAME_TAKEN.format(name=service.name)}) from exc


@transaction.atomic
def service_create(
    *,
    membership: Membership,
    name: str,
    base_url: str,
    auth_method: str,
    description: str = "",
    auth_params: Mapping[str, Any] | None = None,
    extra_params: list[Any] | None = None,
    default_headers: Mapping[str, Any] | None = None,
    test_request: Mapping[str, Any] | None = None,
    pagination: Mapping[str, Any] | None = None,
    endpoints: list[Any] | None = None,
    acknowledge_insecure: bool = False,
    workspace: Workspace | None = None,
    source: str = Source.CUSTOM,
    source_detail: str = "",
) -> Service:
    """Create a service in the creator's personal workspace; any other workspace is refused."""
    personal = membership.personal_workspace
    if workspace is not None and workspace.pk != personal.pk:
        raise ValidationError({"workspace": SHARED_WORKSPACE_REFUSED})
    definition = clean_definition(
        organization_id=membership.organization_id, name=name, base_url=base_url,
        auth_method=auth_method, description=description, auth_params=auth_params,
        extra_params=extra_params, default_headers=default_headers, test_request=test_request,
        pagination=pagination, endpoints=endpoints, acknowledge_insecure=acknowledge_insecure,
    )  # fmt: skip
    service = Service(
        organization_id=membership.organization_id, owner_workspace=personal,
        slug=_unique_slug(membership.organization_id, definition.name),
        endpoints=definition.endpoints, source=source, source_detail=source_detail[:120],
        created_by=membership.user,
    )  # fmt: skip
    _store(service, definition, keep_secrets={})
    audit(
        organization=membership.organization,
        actor=membership.user,
        action="service.create",
        target_type="service",
        target_id=service.public_id,
        details={"name": service.name, "auth_method": service.auth_method, "source": source},
    )
    return service


@transaction.atomic
def service_update(
    *,
    service: Service,
    actor: Membership,
    name: str,
    base_url: str,
    auth_method: str,
    description: str = "",
    auth_params: Mapping[str, Any] | None = None,
    extra_params: list[Any] | None = None,
    default_headers: Mapping[str, Any] | None = None,
    test_request: Mapping[str, Any] | None = None,
    pagination: Mapping[str, Any] | None = None,
    endpoints: list[Any] | None = None,
    acknowledge_insecure: bool = False,
    confirm_origin_change: bool = False,
) -> Service:
    """Replace a service's definition. A blank secret keeps the stored one (write-only).

    Moving the base URL to another host while other people's authentications use the service
    needs ``confirm_origin_change``: their credentials go to the new host with the next call.
    """
    service = Service.objects.select_for_update().get(pk=service.pk)
    definition = clean_definition(
        organization_id=service.organization_id, name=name, base_url=base_url,
        auth_method=auth_method, description=description, auth_params=auth_params,
        extra_params=extra_params, default_headers=default_headers, test_request=test_request,
        pagination=pagination, endpoints=service.endpoints if endpoints is None else endpoints,
        acknowledge_insecure=acknowledge_insecure, instance=service,
    )  # fmt: skip
    origin_change = check_origin_change(
        service, new_base_url=definition.base_url, actor=actor, confirmed=confirm_origin_change
    )
    old_params = list(service.extra_params or [])
    keep = service.get_secret_params() if service.auth_method == auth_method else {}
    changed_secrets = sorted(definition.secrets)
    service.endpoints = definition.endpoints
    _store(service, definition, keep_secrets=keep)
    moved = move_secret_values(service, old_params, definition.extra_params)
    details: dict[str, Any] = {
        "name": service.name,
        "auth_method": service.auth_method,
        "secrets_replaced": changed_secrets,
    }
    if moved is not None:
        details["values_moved"] = moved
    audit(
        organization=actor.organization,
        actor=actor.user,
        action="service.update",
        target_type="service",
        target_id=service.public_id,
        details=details,
    )
    if origin_change is not None:
        audit(
            organization=actor.organization,
            actor=actor.user,
            action="service.origin_change",
            target_type="service",
            target_id=service.public_id,
            details=origin_change,
        )
    return service


@transaction.atomic
def service_delete(
    *, service: Service, actor: Membership, delete_authentications: bool = False
) -> int:
    """Delete a service; authentications using it go too, only when the caller confirmed.

    Returns how many authentications were deleted.
    """
    service = Service.objects.select_for_update().get(pk=service.pk)
    count = service.authentications.count()
    if count and not delete_authentications:
        raise ValidationError(DELETE_NEEDS_CONFIRMATION.format(count=count), code="confirm")
    service.authentications.all().delete()
    audit(
        organization=actor.organization,
        actor=actor.user,
        action="service.delete",
        target_type="service",
        target_id=service.public_id,
        details={"name": service.name, "authentications_deleted": count},
    )
    service.delete()
    return count


@transaction.atomic
def service_transfer(*, service: Service, to: Membership, actor: Membership) -> Service:
    """Move a service into another member's personal workspace (e.g. the service owner's)."""
    if to.organization_id != service.organization_id:
        raise ValidationError({"to": TRANSFER_OTHER_ORG})
    service = (
        Service.objects.select_for_update().select_related("owner_workspace").get(pk=service.pk)
    )
    target = Workspace.objects.get(
        organization_id=service.organization_id, kind=WorkspaceKind.PERSONAL, owner=to
    )
    if service.owner_workspace_id == target.pk:
        raise ValidationError({"to": TRANSFER_SAME_OWNER.format(email=to.user.email)})
    previous = service.owner_workspace.owner_id
    service.owner_workspace = target
    service.full_clean()
    service.save(update_fields=["owner_workspace", "updated_at"])
    from_email = (
        Membership.objects.filter(pk=previous).values_list("user__email", flat=True).first() or ""
    )
    audit(
        organization=actor.organization,
        actor=actor.user,
        action="service.transfer",
        target_type="service",
        target_id=service.public_id,
        details={"name": service.name, "from": from_email, "to": to.user.email},
    )
    return service


@transaction.atomic
def services_transfer_all(*, from_membership: Membership, to: Membership, actor: Membership) -> int:
    """Move every service a member owns to `to` (before removing that member). Returns count."""
    if to.pk == from_membership.pk:
        raise ValidationError({"to": TRANSFER_SAME_OWNER.format(email=to.user.email)})
    owned = Service.objects.filter(
        organization_id=from_membership.organization_id, owner_workspace__owner=from_membership
    ).order_by("name")
    count = 0
    for service in owned:
        service_transfer(service=service, to=to, actor=actor)
        count += 1
    return count
