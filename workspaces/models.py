"""Tenancy: organizations, memberships with roles, workspaces, invitations, API keys, audit."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from traysvc.models import TimestampedModel


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class Organization(TimestampedModel):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=120)
    service_owner = models.ForeignKey(
        "workspaces.Membership",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The dedicated account that owns services so they survive people leaving.",
    )
    webhook_url = models.URLField(blank=True, default="")
    # The last delivery that went through and the last one that did not (what the receiver
    # answered, or why it was not sent), shown to admins on the members page.
    webhook_delivered_at = models.DateTimeField(null=True, blank=True)
    webhook_failed_at = models.DateTimeField(null=True, blank=True)
    webhook_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("workspaces:home", kwargs={"org": self.slug})

    @property
    def webhook_failing(self) -> bool:
        """The last delivery attempt failed (nothing has gone through since)."""
        failed, delivered = self.webhook_failed_at, self.webhook_delivered_at
        return failed is not None and (delivered is None or failed > delivered)


class Membership(TimestampedModel):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"], name="workspaces_membership_unique_user_per_org"
            )
        ]
        ordering = ["organization__name", "user__email"]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role in (Role.OWNER, Role.ADMIN)

    @property
    def personal_workspace(self) -> Workspace:
        return self.organization.workspaces.get(kind=WorkspaceKind.PERSONAL, owner=self)


class WorkspaceKind(models.TextChoices):
    PERSONAL = "personal", "Personal"
    SHARED = "shared", "Shared"


class Workspace(TimestampedModel):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="workspaces"
    )
    kind = models.CharField(max_length=10, choices=WorkspaceKind.choices)
    name = models.CharField(max_length=120)
    # A personal workspace has exactly one owner; a shared one has WorkspaceMember rows.
    owner = models.OneToOneField(
        Membership,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="owned_workspace",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="workspaces_workspace_unique_name_per_org"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(kind="personal", owner__isnull=False)
                    | models.Q(kind="shared", owner__isnull=True)
                ),
                name="workspaces_workspace_personal_has_owner",
            ),
        ]
        ordering = ["kind", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_personal(self) -> bool:
        return self.kind == WorkspaceKind.PERSONAL


class WorkspaceMember(TimestampedModel):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="members")
    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="shared_workspaces"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "membership"], name="workspaces_member_unique_per_workspace"
            )
        ]

    def __str__(self) -> str:
        return f"{self.membership.user} in {self.workspace}"


class Invitation(TimestampedModel):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        Membership, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.organization}"


class ApiKey(TimestampedModel):
    """An API key acts as one member of one organization. Only its hash is stored."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=80, default="API key")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class AuditEvent(models.Model):
    """Who did what to which secret-bearing object. Never the secret itself."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # the audit page of an object: org + target, newest first
            models.Index(
                fields=["organization", "target_type", "target_id", "-created_at"],
                name="workspaces_audit_target_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"


class Notification(models.Model):
    """An in-app notice for one user (e.g. an authentication that needs reconnecting)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="notifications"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    level = models.CharField(max_length=10, default="info")
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, default="")
    link = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # the unread badge: user + org + unread
            models.Index(
                fields=["user", "organization", "read_at"], name="workspaces_notif_unread_idx"
            )
        ]

    def __str__(self) -> str:
        return self.title


class ApiRateCounter(models.Model):
    """Requests per API key per minute when there is no Redis: one UPSERT per request."""

    key_prefix = models.CharField(max_length=16)
    minute = models.BigIntegerField()  # unix time // 60
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["key_prefix", "minute"], name="workspaces_ratecounter_unique_minute"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key_prefix}@{self.minute}: {self.count}"
