"""Organization, members, invitations, workspaces, API keys and notices."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from workspaces import services as ws
from workspaces.access import (
    get_invitation_in_org,
    get_membership_in_org,
    get_workspace_for_member,
    org_member_required,
    require_admin,
    workspaces_for_member,
)
from workspaces.forms import (
    ApiKeyForm,
    InvitationForm,
    OrganizationForm,
    RoleForm,
    ServiceOwnerForm,
    SharedWorkspaceForm,
    WebhookForm,
    WorkspaceMemberForm,
)
from workspaces.models import ApiKey, Invitation, Membership, Notification, Workspace


def _errors_to_messages(request: HttpRequest, exc: ValidationError) -> None:
    for message in exc.messages:
        messages.error(request, message)


def _apply_errors(form: object, exc: ValidationError) -> None:
    """Attach a service's ValidationError to the form's fields (or non-field errors)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            target = field if field in form.fields else None  # type: ignore[attr-defined]
            for error in errors:
                form.add_error(target, error)  # type: ignore[attr-defined]
    else:
        for message in exc.messages:
            form.add_error(None, message)  # type: ignore[attr-defined]


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send the user to their first organization, or to create one."""
    membership = Membership.objects.filter(user=request.user).select_related("organization").first()
    if membership is None:
        return redirect("workspaces:org_new")
    return redirect("workspaces:home", org=membership.organization.slug)


@login_required
def org_new(request: HttpRequest) -> HttpResponse:
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            org = ws.organization_create(
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"] or None,
                owner=request.user,
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Organization “{org.name}” created.")
            return redirect("workspaces:home", org=org.slug)
    return render(request, "workspaces/org_new.html", {"form": form})


@org_member_required
def org_home(request: HttpRequest) -> HttpResponse:
    membership = request.membership  # type: ignore[attr-defined]
    return render(
        request,
        "workspaces/org_home.html",
        {
            "workspaces": workspaces_for_member(membership),
            "notifications": Notification.objects.filter(
                user=request.user, organization=membership.organization, read_at__isnull=True
            )[:5],
        },
    )


@org_member_required
def members(request: HttpRequest) -> HttpResponse:
    membership: Membership = request.membership  # type: ignore[attr-defined]
    org = membership.organization
    rows = list(
        Membership.objects.filter(organization=org).select_related("user").order_by("user__email")
    )
    invitations = (
        Invitation.objects.filter(organization=org, accepted_at__isnull=True)
        if membership.is_admin
        else Invitation.objects.none()
    )
    return render(
        request,
        "workspaces/members.html",
        {
            "rows": rows,
            "invitations": invitations,
            "invite_form": InvitationForm(),
            "now": timezone.now(),
            "roles": RoleForm.base_fields["role"].choices,
            "webhook_form": WebhookForm(initial={"webhook_url": org.webhook_url}),
        },
    )


@require_POST
@org_member_required(admin=True)
def invite(request: HttpRequest) -> HttpResponse:
    membership: Membership = request.membership  # type: ignore[attr-defined]
    form = InvitationForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"{field}: {error}" if field != "__all__" else error)
        return redirect("workspaces:members", org=membership.organization.slug)
    try:
        invitation, token = ws.invitation_create(
            organization=membership.organization,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            invited_by=membership,
        )
    except ValidationError as exc:
        _errors_to_messages(request, exc)
    else:
        link = request.build_absolute_uri(reverse("workspaces:invitation", args=[token]))
        send_mail(
            f"You are invited to {membership.organization.name} on traysvc",
            f"{request.user.email} invited you to join {membership.organization.name} as "
            f"{invitation.get_role_display()}.\n\nAccept: {link}\n\n"
            f"The link works once and expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC. "
            "If you have no account yet, sign up with this email address first.",
            None,
            [invitation.email],
        )
        messages.success(request, f"Invitation sent to {invitation.email}.")
    return redirect("workspaces:members", org=membership.organization.slug)


@require_POST
@org_member_required(admin=True)
def invitation_revoke(request: HttpRequest, invitation_id: uuid.UUID) -> HttpResponse:
    membership: Membership = request.membership  # type: ignore[attr-defined]
    invitation = get_invitation_in_org(membership.organization, invitation_id)
    ws.invitation_revoke(invitation=invitation, actor=membership)
    messages.success(request, f"Invitation for {invitation.email} revoked.")
    return redirect("workspaces:members", org=membership.organization.slug)


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Show an invitation; accepting it needs a signed-in account with the invited address."""
    try:
        inv = ws.invitation_for_token(token)
    except ValidationError as exc:
        return render(request, "workspaces/invitation.html", {"error": exc.messages[0]}, status=404)
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"{reverse('account_login')}?next={request.path}")
        try:
            membership = ws.invitation_accept(token=token, user=request.user)
        except ValidationError as exc:
            return render(
                request,
                "workspaces/invitation.html",
                {"invitation": inv, "error": exc.messages[0]},
                status=400,
            )
        messages.success(request, f"Welcome to {membership.organization.name}.")
        return redirect("workspaces:home", org=membership.organization.slug)
    return render(request, "workspaces/invitation.html", {"invitation": inv})


@require_POST
@org_member_required(admin=True)
def member_role(request: HttpRequest, membership_id: uuid.UUID) -> HttpResponse:
    actor: Membership = request.membership  # type: ignore[attr-defined]
    target = get_membership_in_org(actor.organization, membership_id)
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            ws.membership_set_role(membership=target, role=form.cleaned_data["role"], actor=actor)
        except ValidationError as exc:
            _errors_to_messages(request, exc)
        else:
            messages.success(request, f"{target.user.email} is now {target.get_role_display()}.")
    else:
        messages.error(request, "Choose a valid role.")
    return redirect("workspaces:members", org=actor.organization.slug)


@require_POST
@org_member_required(admin=True)
def member_remove(request: HttpRequest, membership_id: uuid.UUID) -> HttpResponse:
    actor: Membership = request.membership  # type: ignore[attr-defined]
    target = get_membership_in_org(actor.organization, membership_id)
    email = target.user.email
    try:
        ws.membership_remove(membership=target, actor=actor)
    except ValidationError as exc:
        _errors_to_messages(request, exc)
    else:
        messages.success(request, f"{email} was removed from the organization.")
    if target.pk == actor.pk and not Membership.objects.filter(pk=actor.pk).exists():
        return redirect("root")
    return redirect("workspaces:members", org=actor.organization.slug)


@require_POST
@org_member_required(admin=True)
def service_owner(request: HttpRequest) -> HttpResponse:
    actor: Membership = request.membership  # type: ignore[attr-defined]
    form = ServiceOwnerForm(request.POST)
    chosen = None
    if form.is_valid() and form.cleaned_data["membership"]:
        chosen = get_membership_in_org(actor.organization, form.cleaned_data["membership"])
    elif not form.is_valid():
        messages.error(request, "Choose a member of this organization.")
        return redirect("workspaces:members", org=actor.organization.slug)
    ws.organization_set_service_owner(
        organization=actor.organization, membership=chosen, actor=actor
    )
    messages.success(
        request,
        f"Service owner set to {chosen.user.email}." if chosen else "Service owner cleared.",
    )
    return redirect("workspaces:members", org=actor.organization.slug)


@require_POST
@org_member_required(admin=True)
def webhook(request: HttpRequest) -> HttpResponse:
    actor: Membership = request.membership  # type: ignore[attr-defined]
    form = WebhookForm(request.POST)
    if form.is_valid():
        try:
            ws.organization_set_webhook(
                organization=actor.organization, url=form.cleaned_data["webhook_url"], actor=actor
            )
        except ValidationError as exc:
            _errors_to_messages(request, exc)
        else:
            messages.success(request, "Webhook saved.")
    else:
        for error in form.errors.get("webhook_url", []):
            messages.error(request, f"Webhook URL: {error}")
    return redirect("workspaces:members", org=actor.organization.slug)


@org_member_required
def workspace_list(request: HttpRequest) -> HttpResponse:
    membership: Membership = request.membership  # type: ignore[attr-defined]
    form = SharedWorkspaceForm(request.POST or None)
    if request.method == "POST":
        require_admin(membership)
        if form.is_valid():
            try:
                workspace = ws.workspace_create_shared(
                    organization=membership.organization,
                    name=form.cleaned_data["name"],
                    actor=membership,
                )
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, f"Workspace “{workspace.name}” created.")
                return redirect(
                    "workspaces:workspace",
                    org=membership.organization.slug,
                    workspace_id=workspace.public_id,
                )
    if membership.is_admin:
        visible = Workspace.objects.filter(organization=membership.organization, kind="shared")
        mine = workspaces_for_member(membership)
        rows = [w for w in mine if w.is_personal] + list(visible)
    else:
        rows = workspaces_for_member(membership)
    return render(request, "workspaces/workspace_list.html", {"rows": rows, "form": form})


@org_member_required
def workspace_detail(request: HttpRequest, workspace_id: uuid.UUID) -> HttpResponse:
    membership: Membership = request.membership  # type: ignore[attr-defined]
    workspace = get_workspace_for_member(membership, workspace_id)
    members_rows = (
        workspace.members.select_related("membership__user") if not workspace.is_personal else []
    )
    candidates = (
        Membership.objects.filter(organization=membership.organization)
        .exclude(shared_workspaces__workspace=workspace)
        .select_related("user")
        if membership.is_admin and not workspace.is_personal
        else []
    )
    return render(
        request,
        "workspaces/workspace_detail.html",
        {"workspace": workspace, "members_rows": members_rows, "candidates": candidates},
    )


@require_POST
@org_member_required(admin=True)
def workspace_member_add(request: HttpRequest, workspace_id: uuid.UUID) -> HttpResponse:
    actor: Membership = request.membership  # type: ignore[attr-defined]
    workspace = get_workspace_for_member(actor, workspace_id, manage=True)
    form = WorkspaceMemberForm(request.POST)
    if form.is_valid():
        target = get_membership_in_org(actor.organization, form.cleaned_data["membership"])
        try:
            ws.workspace_member_add(workspace=workspace, membership=target, actor=actor)
        except ValidationError as exc:
            _errors_to_messages(request, exc)
        else:
            messages.success(request, f"{target.user.email} added to {workspace.name}.")
    else:
        messages.error(request, "Choose a member of this organization.")
    return redirect(
        "workspaces:workspace", org=actor.organization.slug, workspace_id=workspace.public_id
    )


@require_POST
@org_member_required(admin=True)
def workspace_member_remove(
    request: HttpRequest, workspace_id: uuid.UUID, membership_id: uuid.UUID
) -> HttpResponse:
    actor: Membership = request.membership  # type: ignore[attr-defined]
    workspace = get_workspace_for_member(actor, workspace_id, manage=True)
    target = get_membership_in_org(actor.organization, membership_id)
    ws.workspace_member_remove(workspace=workspace, membership=target, actor=actor)
    messages.success(request, f"{target.user.email} removed from {workspace.name}.")
    return redirect(
        "workspaces:workspace", org=actor.organization.slug, workspace_id=workspace.public_id
    )


@org_member_required
def notifications(request: HttpRequest) -> HttpResponse:
    membership: Membership = request.membership  # type: ignore[attr-defined]
    rows = Notification.objects.filter(user=request.user, organization=membership.organization)[
        :100
    ]
    if request.method == "POST":
        Notification.objects.filter(
            user=request.user, organization=membership.organization, read_at__isnull=True
        ).update(read_at=timezone.now())
        return redirect("workspaces:notifications", org=membership.organization.slug)
    return render(request, "workspaces/notifications.html", {"rows": rows})


@login_required
def api_keys(request: HttpRequest) -> HttpResponse:
    """The user's API keys across their organizations; a new key is shown exactly once."""
    memberships = Membership.objects.filter(user=request.user).select_related("organization")
    form = ApiKeyForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        membership = memberships.filter(
            organization__slug=form.cleaned_data["organization"]
        ).first()
        if membership is None:
            form.add_error("organization", "You are not a member of that organization.")
        else:
            _key, new_key = ws.api_key_create(membership=membership, name=form.cleaned_data["name"])
    keys = ApiKey.objects.filter(membership__user=request.user).select_related(
        "membership__organization"
    )
    return render(
        request,
        "workspaces/api_keys.html",
        {"form": form, "keys": keys, "memberships": memberships, "new_key": new_key},
    )


@require_POST
@login_required
def api_key_revoke(request: HttpRequest, key_id: uuid.UUID) -> HttpResponse:
    key = (
        ApiKey.objects.filter(membership__user=request.user, public_id=key_id)
        .select_related("membership__organization")
        .first()
    )
    if key is None:
        from django.http import Http404

        raise Http404
    ws.api_key_revoke(key=key, actor=request.user)
    messages.success(request, f"API key {key.prefix}… revoked.")
    return redirect("workspaces:api_keys")
