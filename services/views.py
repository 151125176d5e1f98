"""Service pages: list, new (by hand, from a catalog template, from OpenAPI), detail, edit,
delete, export / import and ownership transfer. Views parse, authorize, call one service."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from services import service_io
from services import services as svc
from services.access import can_edit_service, get_service_for_member
from services.auth_methods import REGISTRY, get_method
from services.catalog import get_connector, load_catalog
from services.forms import (
    DeleteForm,
    ExtraParamRows,
    ServiceForm,
    TransferForm,
    auth_params_form_class,
    auth_params_initial,
    method_key_or_default,
    service_initial,
)
from services.forms_io import ImportForm, OpenAPIForm
from services.models import Service, Source
from services.openapi_import import OpenAPIImportError, parse_openapi
from services.selectors import services_owned_by, services_visible_to
from workspaces.access import get_membership_in_org, org_member_required, require_admin
from workspaces.models import Membership

CREATED = "Service “{name}” created in your personal workspace."
UPDATED = "Service “{name}” saved."
DELETED = "Service “{name}” deleted."
DELETED_WITH_AUTHS = "Service “{name}” and {count} authentication(s) deleted."
TRANSFERRED = "“{name}” now belongs to {email}."
TRANSFERRED_ALL = "{count} service(s) moved to {email}. {email_from} can now be removed."
CHECK_ERRORS = "Please correct the errors below."
FORM_FIELDS = {
    "name", "description", "base_url", "auth_method", "default_headers", "confirm_origin_change",
}  # fmt: skip
EDITOR_SOURCES = {Source.CUSTOM, Source.CATALOG, Source.OPENAPI}


def redirect_uri() -> str:
    """The exact OAuth redirect URI to register with a provider."""
    return settings.TRAYSVC_PUBLIC_URL + "/oauth2/callback"


def _m(request: HttpRequest) -> Membership:
    return request.membership  # type: ignore[attr-defined,no-any-return]


def _apply_errors(exc: ValidationError, form: Any, auth_form: Any, rows: ExtraParamRows) -> list:
    """Put each error of the service's field-path dict next to its input."""
    section_errors: list[str] = []
    found = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    for key, errors in found.items():
        for message in errors:
            head, _, rest = key.partition(".")
            if key in FORM_FIELDS or head == "default_headers":
                form.add_error(head, message)
            elif head == "test_request":
                form.add_error("test_method" if rest == "method" else "test_path", message)
            elif head == "pagination":
                name = f"pagination_{rest}"
                form.add_error(name if name in form.fields else "pagination_kind", message)
            elif head == "auth_params" or key == "acknowledge_insecure":
                name = rest if head == "auth_params" else key
                auth_form.add_error(name if name in auth_form.fields else None, message)
            elif head == "extra_params" and rest:
                index, _, field = rest.partition(".")
                if index.isdigit():
                    rows.add_error(int(index), field or "row", message)
                else:
                    section_errors.append(message)
            elif head == "extra_params":
                section_errors.append(message)
            else:
                form.add_error(None, message)
    return section_errors


def _editor(
    request: HttpRequest,
    *,
    service: Service | None,
    initial: dict[str, Any],
    params_initial: dict[str, Any],
    params: list[dict[str, Any]],
    extra_context: dict[str, Any] | None = None,
    post: bool,
) -> HttpResponse:
    """The new / edit page: one view body, server-rendered, htmx only swaps the method fields."""
    membership = _m(request)
    query = request.GET.copy()
    query.pop("auth_method", None)  # htmx adds the chosen one
    here = request.path + (f"?{query.urlencode()}" if query else "")
    stored = set(service.get_secret_params()) if service is not None else set()
    data = request.POST if post else None
    method_key = method_key_or_default(
        (data.get("auth_method") if data is not None else None) or request.GET.get("auth_method"),
        initial.get("auth_method", "none"),
    )
    if service is not None and method_key != service.auth_method:
        stored, params_initial = set(), {}
    elif initial.get("auth_method") != method_key:
        params_initial = {}
    auth_class = auth_params_form_class(method_key)
    refresh = post and "_refresh" in request.POST
    if refresh:  # "Show the fields for this method" without JavaScript: keep input, no errors
        keep: dict[str, Any] = {k: v for k, v in request.POST.items() if k[:5] != "auth-"}
        try:
            keep["endpoints"] = json.loads(keep.get("endpoints") or "null")
        except ValueError:
            keep["endpoints"] = None
        form = ServiceForm(initial=keep, method_fields_url=here)
        auth_form = auth_class(stored_secrets=stored)
        rows = ExtraParamRows.from_post(request.POST)
    elif post:
        form = ServiceForm(data, method_fields_url=here)
        auth_form = auth_class(data, stored_secrets=stored)
        rows = ExtraParamRows.from_post(request.POST)
    else:
        form = ServiceForm(initial={**initial, "auth_method": method_key}, method_fields_url=here)
        auth_form = auth_class(initial=params_initial, stored_secrets=stored)
        rows = ExtraParamRows.from_params(params)
    context = {
        "form": form, "auth_form": auth_form, "method": get_method(method_key), "rows": rows,
        "service": service, "redirect_uri": redirect_uri(), "section_errors": [],
        "personal_workspace": membership.personal_workspace, **(extra_context or {}),
    }  # fmt: skip
    if request.htmx and not post:  # type: ignore[attr-defined]
        return render(request, "services/_auth_method_fields.html", context)
    if post and not refresh:
        form_ok, auth_ok = form.is_valid(), auth_form.is_valid()
        if form_ok and auth_ok:
            try:
                saved = _save(membership, service, form.cleaned_data, auth_form.cleaned_data, rows)
            except ValidationError as exc:
                context["section_errors"] = _apply_errors(exc, form, auth_form, rows)
            else:
                template = UPDATED if service is not None else CREATED
                messages.success(request, template.format(name=saved.name))
                return redirect(saved.get_absolute_url())
        messages.error(request, CHECK_ERRORS)
        return render(request, "services/service_form.html", context, status=400)
    return render(request, "services/service_form.html", context)


def _save(
    membership: Membership,
    service: Service | None,
    data: dict[str, Any],
    auth: dict[str, Any],
    rows: ExtraParamRows,
) -> Service:
    common = {
        "name": data["name"], "description": data["description"], "base_url": data["base_url"],
        "auth_method": data["auth_method"], "auth_params": auth["params"],
        "extra_params": rows.cleaned(), "default_headers": data["default_headers"],
        "test_request": data["test_request"], "pagination": data["pagination"],
        "acknowledge_insecure": bool(auth.get("acknowledge_insecure")),
    }  # fmt: skip
    if service is not None:
        confirmed = bool(data.get("confirm_origin_change"))
        return svc.service_update(
            service=service, actor=membership, confirm_origin_change=confirmed, **common
        )
    workspace = None
    if data.get("workspace"):
        workspace = membership.organization.workspaces.filter(public_id=data["workspace"]).first()
        if workspace is None:
            raise ValidationError({"workspace": svc.SHARED_WORKSPACE_REFUSED})
    source = str(data.get("source")) if data.get("source") in EDITOR_SOURCES else Source.CUSTOM
    detail = data.get("source_detail") or ""
    if source == Source.CATALOG and get_connector(detail) is None:
        source, detail = Source.CUSTOM, ""
    return svc.service_create(
        membership=membership, workspace=workspace, endpoints=data.get("endpoints") or [],
        source=source, source_detail=detail, **common,
    )  # fmt: skip


@org_member_required
def service_list(request: HttpRequest) -> HttpResponse:
    membership = _m(request)
    rows = list(services_visible_to(membership=membership))
    for row in rows:
        mine = row.owner_workspace.owner_id == membership.pk
        row.can_edit = membership.is_admin or mine  # type: ignore[attr-defined]
    return render(request, "services/service_list.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
@org_member_required
def service_new(request: HttpRequest) -> HttpResponse:
    """A new service by hand, or prefilled from a catalog connector (?template=<key>)."""
    initial: dict[str, Any] = {"auth_method": "none", "test_method": "GET"}
    params_initial: dict[str, Any] = {}
    params: list[dict[str, Any]] = []
    connector = get_connector(request.GET.get("template", ""))
    if connector is not None:
        values = connector.model_dump(mode="json")
        initial = service_initial(
            {**values, "source": Source.CATALOG, "source_detail": connector.key}
        )
        params_initial = auth_params_initial(connector.auth_method, connector.auth_params)
        params = values["extra_params"]
    return _editor(
        request, service=None, initial=initial, params_initial=params_initial, params=params,
        extra_context={"connector": connector}, post=request.method == "POST",
    )  # fmt: skip


@org_member_required
def service_detail(request: HttpRequest, service_id: uuid.UUID) -> HttpResponse:
    membership = _m(request)
    service = get_service_for_member(membership, service_id)
    method = REGISTRY.get(service.auth_method)
    stored = sorted(service.get_secret_params()) if method and method.secret_param_keys else []
    context = {
        "service": service, "method": method, "can_edit": can_edit_service(membership, service),
        "redirect_uri": redirect_uri(), "stored_secrets": stored,
        "authentication_count": service.authentications.count(),
        "connector": get_connector(service.connector) if service.connector else None,
        "owner": service.owner_workspace.owner,
        "auth_rows": _display_params(service.auth_params),
        "endpoints": service.endpoints[:200],
        "more_endpoints": max(0, len(service.endpoints) - 200),
    }  # fmt: skip
    return render(request, "services/service_detail.html", context)


def _display_params(params: dict[str, Any]) -> list[tuple[str, str]]:
    """Non-secret auth params as text: JSON for lists, flags and blank-looking strings."""
    rows = []
    for key, value in params.items():
        if value in ({}, [], None, ""):
            continue
        text = value if isinstance(value, str) and value.strip() else json.dumps(value)
        rows.append((key, text))
    return rows


@require_http_methods(["GET", "POST"])
@org_member_required
def service_edit(request: HttpRequest, service_id: uuid.UUID) -> HttpResponse:
    service = get_service_for_member(_m(request), service_id, write=True)
    values = {f: getattr(service, f) for f in (
        "name", "description", "base_url", "auth_method", "test_request", "pagination",
        "default_headers",
    )}  # fmt: skip
    return _editor(
        request, service=service, initial=service_initial(values),
        params_initial=auth_params_initial(service.auth_method, service.auth_params)
        if service.auth_method in REGISTRY else {},
        params=service.extra_params, post=request.method == "POST",
    )  # fmt: skip


@require_http_methods(["GET", "POST"])
@org_member_required
def service_delete(request: HttpRequest, service_id: uuid.UUID) -> HttpResponse:
    """GET asks for confirmation (saying how many authentications go too); POST deletes."""
    membership = _m(request)
    service = get_service_for_member(membership, service_id, write=True)
    count = service.authentications.count()
    error = ""
    if request.method == "POST":
        form = DeleteForm(request.POST)
        confirmed = form.is_valid() and form.cleaned_data["confirm"]
        try:
            deleted = svc.service_delete(
                service=service, actor=membership, delete_authentications=confirmed
            )
        except ValidationError as exc:
            error = exc.messages[0]
        else:
            text = DELETED_WITH_AUTHS if deleted else DELETED
            messages.success(request, text.format(name=service.name, count=deleted))
            return redirect("services:list", org=membership.organization.slug)
    context = {"service": service, "authentication_count": count, "error": error}
    return render(request, "services/service_delete.html", context, status=400 if error else 200)


@org_member_required
def service_export(request: HttpRequest, service_id: uuid.UUID) -> HttpResponse:
    """Download the definition as JSON: no secret is ever part of it."""
    service = get_service_for_member(_m(request), service_id)
    document = service_io.service_export(service=service)
    response = JsonResponse(document, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{service.slug}.json"'
    return response


@require_http_methods(["GET", "POST"])
@org_member_required
def service_import(request: HttpRequest) -> HttpResponse:
    """Import an export (from any organization) into the importer's personal workspace."""
    membership = _m(request)
    errors: list[tuple[str, str]] = []
    form = ImportForm()
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        secret_keys: tuple[str, ...] = ()
        if form.is_valid():
            document = form.cleaned_data["document"]
            try:
                doc = service_io.parse_service_document(document)
            except ValidationError:
                doc = None
            if doc is not None and doc.auth_method in REGISTRY:
                secret_keys = tuple(get_method(doc.auth_method).secret_param_keys)
            form = ImportForm(request.POST, request.FILES, secret_keys=secret_keys)
            form.is_valid()
            try:
                service = service_io.service_import(
                    membership=membership, data=document,
                    secrets=form.secrets(),
                )  # fmt: skip
            except ValidationError as exc:
                errors = [(k, m) for k, v in exc.message_dict.items() for m in v]
            else:
                messages.success(request, CREATED.format(name=service.name))
                return redirect(service.get_absolute_url())
        status = 400
    else:
        status = 200
    context = {"form": form, "errors": errors}
    return render(request, "services/service_import.html", context, status=status)


@require_http_methods(["GET", "POST"])
@org_member_required
def service_import_openapi(request: HttpRequest) -> HttpResponse:
    """Upload or paste an OpenAPI 3 document -> a prefilled draft the user reviews and saves."""
    form = OpenAPIForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            draft = parse_openapi(
                form.cleaned_data["document"], base_url=form.cleaned_data["base_url"] or None
            )
        except OpenAPIImportError as exc:
            form.add_error("base_url" if exc.field == "base_url" else None, exc.message)
        else:
            values = draft.model_dump(mode="json")
            initial = service_initial(
                {**values, "source": Source.OPENAPI, "source_detail": draft.name}
            )
            params = [{**p, "default": p["default"] or None} for p in values["extra_params"]]
            return _editor(
                request, service=None, initial=initial,
                params_initial=auth_params_initial(draft.auth_method, draft.auth_params),
                params=params, post=False,
                extra_context={"draft": draft, "form_action": reverse(
                    "services:new", kwargs={"org": _m(request).organization.slug})},
            )  # fmt: skip
    status = 400 if request.method == "POST" else 200
    return render(request, "services/service_openapi.html", {"form": form}, status=status)


def _targets(membership: Membership, exclude: int | None) -> list[tuple[str, str]]:
    """Members to transfer to: the designated service owner first."""
    org = membership.organization
    rows = Membership.objects.filter(organization=org).select_related("user")
    out = []
    for m in rows.order_by("user__email"):
        if m.pk == exclude:
            continue
        label = f"{m.user.email} (service owner)" if m.pk == org.service_owner_id else m.user.email
        out.append((str(m.public_id), label))
    out.sort(key=lambda item: not item[1].endswith("(service owner)"))
    return out


@require_http_methods(["GET", "POST"])
@org_member_required(admin=True)
def service_transfer(request: HttpRequest, service_id: uuid.UUID) -> HttpResponse:
    membership = _m(request)
    service = get_service_for_member(membership, service_id, write=True)
    current = service.owner_workspace.owner
    form = TransferForm(request.POST or None, targets=_targets(membership, current.pk))
    if request.method == "POST" and form.is_valid():
        target = get_membership_in_org(membership.organization, uuid.UUID(form.cleaned_data["to"]))
        try:
            svc.service_transfer(service=service, to=target, actor=membership)
        except ValidationError as exc:
            form.add_error("to", exc.messages[0])
        else:
            text = TRANSFERRED.format(name=service.name, email=target.user.email)
            messages.success(request, text)
            return redirect(service.get_absolute_url())
    context = {"service": service, "form": form, "owner": current}
    status = 400 if request.method == "POST" else 200
    return render(request, "services/service_transfer.html", context, status=status)


@require_http_methods(["GET", "POST"])
@org_member_required(admin=True)
def member_services_transfer(request: HttpRequest, membership_id: uuid.UUID) -> HttpResponse:
    """Move everything a member owns at once: what removing them requires first."""
    membership = _m(request)
    require_admin(membership)
    leaving = get_membership_in_org(membership.organization, membership_id)
    owned = list(services_owned_by(membership=leaving))
    form = TransferForm(request.POST or None, targets=_targets(membership, leaving.pk))
    if request.method == "POST" and form.is_valid():
        target = get_membership_in_org(membership.organization, uuid.UUID(form.cleaned_data["to"]))
        try:
            count = svc.services_transfer_all(from_membership=leaving, to=target, actor=membership)
        except ValidationError as exc:
            form.add_error("to", exc.messages[0])
        else:
            messages.success(request, TRANSFERRED_ALL.format(
                count=count, email=target.user.email, email_from=leaving.user.email))  # fmt: skip
            return redirect("workspaces:members", org=membership.organization.slug)
    context = {"leaving": leaving, "owned": owned, "form": form}
    status = 400 if request.method == "POST" else 200
    return render(request, "services/member_transfer.html", context, status=status)


@org_member_required
def connector_catalog(request: HttpRequest) -> HttpResponse:
    """The catalog: each connector prefills the new-service form."""
    rows = list(load_catalog().values())
    return render(request, "services/catalog.html", {"rows": rows})
