"""Authentication pages and the OAuth2 callback. Views parse, authorize, call one service.

Access: a member sees the authentications of their personal workspace and of the shared
workspaces they belong to (``authentications_usable_by``); anything else — another member's
personal authentication, another organization's — is a 404, so ids reveal nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from services.access import get_authentication_for_member, get_service_for_member
from services.authentications import (
    Target,
    authentication_create,
    authentication_delete,
    authentication_form_values,
    authentication_update,
    authentications_usable_by,
    effective_method_key,
    public_values,
    resolve_target,
    target_of,
)
from services.forms_auth import (
    AuthenticationCreateForm,
    AuthenticationStartForm,
    AuthenticationValuesForm,
    OAuthConnectForm,
    parse_target,
    target_value,
)
from services.models import Authentication, Service
from services.oauth import (
    OAuthFlowError,
    client_credentials_connect,
    grant_type_of,
    oauth_flow_finish,
    oauth_flow_start,
)
from services.refresh import REASON_MANUAL, RefreshError, authentication_refresh
from services.selectors import services_visible_to
from services.status import connector_grant_flag, explain_status, service_grant_flag
from workspaces.access import org_member_required, workspaces_for_member
from workspaces.models import AuditEvent, Membership

CREATED = "Authentication “{name}” created."
CONNECTED = "Connected: authentication “{name}” is ready."
RECONNECTED = "Reconnected: “{name}” has a new grant and keeps its id."
UPDATED = "Authentication “{name}” saved."
DELETED = "Authentication “{name}” deleted."
REFRESHED = "Refreshed: “{name}” has a new access token."
REFRESH_FAILED = "The refresh failed: {reason}"
NOT_OAUTH2_REFRESH = "Only OAuth2 authentications can be refreshed."
CC_CONNECT_FAILED = "Could not connect: {reason}"
CHECK_ERRORS = "Please correct the errors below."
DECLINED = "You declined access at the provider, so nothing was connected."
CALLBACK_FAILED_TITLE = "Connecting did not work"
AUDIT_LIMIT = 50


def _m(request: HttpRequest) -> Membership:
    return request.membership  # type: ignore[attr-defined,no-any-return]


def _errors(exc: ValidationError | PermissionDenied) -> list[str]:
    if isinstance(exc, PermissionDenied):
        return [str(exc)]
    return list(exc.messages)


def _resolve_choice(membership: Membership, value: str) -> tuple[Service | None, str]:
    """(service, connector key) from a target value; another org's service is a 404."""
    parsed = parse_target(value)
    if parsed is None:
        raise Http404
    kind, ident = parsed
    if kind == "service":
        return get_service_for_member(membership, ident), ""
    return None, ident


def _grant_type(target: Target) -> str:
    params = target.params or {}
    return str(params.get("grant_type") or "authorization_code")


def _to_detail(authentication: Authentication) -> HttpResponse:
    return redirect(authentication.get_absolute_url())


@org_member_required  # first: an outsider learns nothing, whatever the method
@require_GET
def authentication_list(request: HttpRequest) -> HttpResponse:
    membership = _m(request)
    rows = list(authentications_usable_by(membership=membership))
    return render(request, "services/authentication_list.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
@org_member_required
def authentication_new(request: HttpRequest) -> HttpResponse:
    """Step one (GET, the choice); step two (GET with ``step``): values or Connect; POST saves."""
    membership = _m(request)
    workspaces = workspaces_for_member(membership)
    if request.method == "POST":
        return _create(request, membership, workspaces)
    services = services_visible_to(membership=membership)
    if "step" not in request.GET:
        initial = {"target": request.GET.get("target", ""), "name": request.GET.get("name", "")}
        service_id = request.GET.get("service")
        if service_id:
            initial["target"] = target_value(service=get_service_for_member(membership, service_id))
        elif request.GET.get("connector"):
            initial["target"] = target_value(connector=request.GET["connector"])
        form = AuthenticationStartForm(initial=initial, services=services, workspaces=workspaces)
        return render(request, "services/authentication_new.html", {"form": form})
    start = AuthenticationStartForm(request.GET, services=services, workspaces=workspaces)
    if not start.is_valid():
        return render(request, "services/authentication_new.html", {"form": start}, status=400)
    service, connector = _resolve_choice(membership, start.cleaned_data["target"])
    try:
        target = resolve_target(
            organization=membership.organization, service=service, connector=connector or None
        )
    except (ValidationError, PermissionDenied) as exc:
        for message in _errors(exc):
            start.add_error("target", message)
        return render(request, "services/authentication_new.html", {"form": start}, status=400)
    initial = {
        "target": start.cleaned_data["target"],
        "workspace": str(start.cleaned_data["workspace"].public_id),
        "name": start.cleaned_data["name"],
    }
    context: dict[str, Any] = {"target": target, "summary": start.cleaned_data}
    if target.method_key == "oauth2":
        context["connect_form"] = OAuthConnectForm(
            initial=initial, workspaces=workspaces, target=target
        )
        context["grant_type"] = _grant_type(target)
        return render(request, "services/authentication_connect.html", context)
    form = AuthenticationCreateForm(initial=initial, target=target, workspaces=workspaces)
    return render(request, "services/authentication_values.html", {**context, "form": form})


def _create(request: HttpRequest, membership: Membership, workspaces: list) -> HttpResponse:
    service, connector = _resolve_choice(membership, request.POST.get("target", ""))
    try:
        target = resolve_target(
            organization=membership.organization, service=service, connector=connector or None
        )
    except (ValidationError, PermissionDenied) as exc:
        for message in _errors(exc):
            messages.error(request, message)
        return redirect("services:authentication_new", org=membership.organization.slug)
    form = AuthenticationCreateForm(request.POST, target=target, workspaces=workspaces)
    context = {"target": target, "form": form}
    if form.is_valid():
        try:
            authentication = authentication_create(
                membership=membership,
                workspace=form.cleaned_data["workspace"],
                service=service,
                connector=connector or None,
                name=form.cleaned_data["name"],
                values=form.values(),
            )
        except (ValidationError, PermissionDenied) as exc:
            form.apply_errors(
                exc if isinstance(exc, ValidationError) else ValidationError(str(exc))
            )
        else:
            messages.success(request, CREATED.format(name=authentication.name))
            return _to_detail(authentication)
    messages.error(request, CHECK_ERRORS)
    return render(request, "services/authentication_values.html", context, status=400)


@require_POST
@org_member_required
def oauth_start(request: HttpRequest) -> HttpResponse:
    """The Connect button: authorization code -> the provider; client credentials -> at once."""
    membership = _m(request)
    workspaces = workspaces_for_member(membership)
    back = reverse("services:authentication_new", kwargs={"org": membership.organization.slug})
    target: Target | None = None
    service: Service | None = None
    connector = ""
    if parse_target(request.POST.get("target", "")) is not None:
        service, connector = _resolve_choice(membership, request.POST["target"])
        try:
            target = resolve_target(
                organization=membership.organization, service=service, connector=connector or None
            )
        except (ValidationError, PermissionDenied) as exc:
            for message in _errors(exc):
                messages.error(request, message)
            return redirect(back)
    form = OAuthConnectForm(request.POST, workspaces=workspaces, target=target)
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else field
            for error in errors:
                messages.error(request, error if field == "__all__" else f"{label}: {error}")
        return redirect(back)
    assert target is not None  # noqa: S101 - the form's clean_target refused anything else
    data = form.cleaned_data
    try:
        if _grant_type(target) == "client_credentials" and service is not None:
            authentication = client_credentials_connect(
                membership=membership,
                workspace=data["workspace"],
                service=target.service or service,
                name=data["name"],
                values=form.values(),
            )
            messages.success(request, CONNECTED.format(name=authentication.name))
            return _to_detail(authentication)
        url, _state = oauth_flow_start(
            membership=membership,
            workspace=data["workspace"],
            service=service,
            connector=connector or None,
            name=data["name"],
            values=form.values(),
        )
    except OAuthFlowError as exc:
        messages.error(request, CC_CONNECT_FAILED.format(reason=exc.message))
        return redirect(back)
    except (ValidationError, PermissionDenied) as exc:
        for message in _errors(exc):
            messages.error(request, message)
        return redirect(back)
    return redirect(url)


@org_member_required
def authentication_detail(request: HttpRequest, authentication_id: uuid.UUID) -> HttpResponse:
    membership = _m(request)
    authentication = get_authentication_for_member(membership, authentication_id)
    if request.method not in ("GET", "HEAD"):  # after the lookup: a foreign id stays a 404
        return HttpResponseNotAllowed(["GET", "HEAD"])
    meaning, fix = explain_status(authentication.status)
    method_key = effective_method_key(authentication)
    is_oauth2 = method_key == "oauth2"
    if authentication.service_id is not None:
        flag = service_grant_flag(authentication.service)
    else:
        flag = connector_grant_flag(
            organization_id=authentication.organization_id, connector=authentication.connector
        )
    audit_rows = (
        AuditEvent.objects.filter(
            organization_id=membership.organization_id,
            target_type="authentication",
            target_id=str(authentication.public_id),
        )
        .select_related("actor")
        .order_by("-created_at", "-pk")[:AUDIT_LIMIT]
    )
    context = {
        "authentication": authentication,
        "meaning": meaning,
        "fix": fix,
        "method_key": method_key,
        "is_oauth2": is_oauth2,
        "grant_type": grant_type_of(authentication) if is_oauth2 else "",
        "grant_flag": flag,
        "audit_rows": audit_rows,
        "failing": authentication.status not in ("active", "pending"),
        "values": public_values(authentication),
    }
    return render(request, "services/authentication_detail.html", context)


@require_http_methods(["GET", "POST"])
@org_member_required
def authentication_edit(request: HttpRequest, authentication_id: uuid.UUID) -> HttpResponse:
    """Rename, change values; a blank secret keeps the stored one."""
    membership = _m(request)
    authentication = get_authentication_for_member(membership, authentication_id)
    target = target_of(authentication)
    stored = {k for k, v in authentication.get_secrets().items() if v}
    if request.method == "POST":
        form = AuthenticationValuesForm(request.POST, target=target, stored=stored)
        if form.is_valid():
            try:
                authentication = authentication_update(
                    authentication=authentication,
                    actor=membership,
                    name=form.cleaned_data["name"],
                    values=form.values() if form.has_values else None,
                )
            except ValidationError as exc:
                form.apply_errors(exc)
            else:
                messages.success(request, UPDATED.format(name=authentication.name))
                return _to_detail(authentication)
        messages.error(request, CHECK_ERRORS)
        status = 400
    else:
        shown = authentication_form_values(authentication)
        initial = {"name": authentication.name, **{f"value_{k}": v for k, v in shown.items()}}
        form = AuthenticationValuesForm(initial=initial, target=target, stored=stored)
        status = 200
    context = {"authentication": authentication, "form": form, "target": target}
    return render(request, "services/authentication_edit.html", context, status=status)


@require_http_methods(["GET", "POST"])
@org_member_required
def authentication_delete_view(request: HttpRequest, authentication_id: uuid.UUID) -> HttpResponse:
    """GET asks to confirm; POST deletes (an OAuth2 grant is revoked at the provider first)."""
    membership = _m(request)
    authentication = get_authentication_for_member(membership, authentication_id)
    if request.method == "POST":
        name = authentication.name
        authentication_delete(authentication=authentication, actor=membership)
        messages.success(request, DELETED.format(name=name))
        return redirect("services:authentications", org=membership.organization.slug)
    return render(
        request, "services/authentication_delete.html", {"authentication": authentication}
    )


@require_POST
@org_member_required
def authentication_reconnect(request: HttpRequest, authentication_id: uuid.UUID) -> HttpResponse:
    """A new grant for the same authentication (same id): to the provider, or a new token."""
    membership = _m(request)
    authentication = get_authentication_for_member(membership, authentication_id)
    if effective_method_key(authentication) != "oauth2":
        return redirect(
            "services:authentication_edit",
            org=membership.organization.slug,
            authentication_id=authentication.public_id,
        )
    if grant_type_of(authentication) == "client_credentials":
        return _refresh(request, authentication)
    try:
        url, _state = oauth_flow_start(
            membership=membership,
            workspace=authentication.workspace,
            name=authentication.name,
            authentication=authentication,
        )
    except (ValidationError, PermissionDenied) as exc:
        for message in _errors(exc):
            messages.error(request, message)
        return _to_detail(authentication)
    return redirect(url)


def _refresh(request: HttpRequest, authentication: Authentication) -> HttpResponse:
    try:
        authentication = authentication_refresh(
            authentication_id=authentication.pk, reason=REASON_MANUAL, actor=request.user
        )
    except RefreshError as exc:
        messages.error(request, REFRESH_FAILED.format(reason=exc))
    else:
        messages.success(request, REFRESHED.format(name=authentication.name))
    return _to_detail(authentication)


@require_POST
@org_member_required
def authentication_refresh_view(request: HttpRequest, authentication_id: uuid.UUID) -> HttpResponse:
    """Refresh now: the same refresh the sweep and the runner's 401 retry use."""
    authentication = get_authentication_for_member(_m(request), authentication_id)
    if effective_method_key(authentication) != "oauth2":
        messages.error(request, NOT_OAUTH2_REFRESH)
        return _to_detail(authentication)
    return _refresh(request, authentication)


@require_GET
@login_required
def oauth_callback(request: HttpRequest) -> HttpResponse:
    """The provider sends the browser here: finish the flow, or say plainly why not (400)."""
    params = request.GET
    try:
        authentication = oauth_flow_finish(
            user=request.user,
            state=params.get("state", ""),
            code=params.get("code") or None,
            error=params.get("error") or None,
            error_description=params.get("error_description") or None,
            iss=params.get("iss") or None,
        )
    except OAuthFlowError as exc:
        message = DECLINED if exc.code == "access_denied" else exc.message
        return _callback_failed(request, message)
    except (ValidationError, PermissionDenied) as exc:
        return _callback_failed(request, " ".join(_errors(exc)))
    latest = (
        AuditEvent.objects.filter(
            organization_id=authentication.organization_id,
            target_type="authentication",
            target_id=str(authentication.public_id),
            action__in=("authentication.create", "authentication.reconnect"),
        )
        .order_by("-created_at", "-pk")
        .values_list("action", flat=True)
        .first()
    )
    reconnected = latest == "authentication.reconnect"
    template = RECONNECTED if reconnected else CONNECTED
    messages.success(request, template.format(name=authentication.name))
    return _to_detail(authentication)


def _callback_failed(request: HttpRequest, message: str) -> HttpResponse:
    membership = Membership.objects.filter(user=request.user).select_related("organization").first()
    back = (
        reverse("services:authentications", kwargs={"org": membership.organization.slug})
        if membership is not None
        else "/"
    )
    context = {"title": CALLBACK_FAILED_TITLE, "message": message, "back": back}
    return render(request, "services/authentication_callback_error.html", context, status=400)
