"""Service definitions, authentications (encrypted secrets) and OAuth flows."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse

from traysvc.models import TimestampedModel


class Source(models.TextChoices):
    CUSTOM = "custom", "Custom"
    CATALOG = "catalog", "From catalog template"
    OPENAPI = "openapi", "Imported from OpenAPI"
    IMPORT = "import", "Imported from JSON"


class Service(TimestampedModel):
    """A custom service: created in a personal workspace, visible to the whole organization."""

    organization = models.ForeignKey(
        "workspaces.Organization", on_delete=models.CASCADE, related_name="services"
    )
    owner_workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.PROTECT, related_name="services"
    )
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120)
    description = models.TextField(blank=True, default="")
    base_url = models.CharField(max_length=500)
    auth_method = models.CharField(max_length=20)
    # Non-secret auth parameters, validated by the auth method's params model.
    auth_params = models.JSONField(default=dict, blank=True)
    # Secret auth parameters (e.g. OAuth client_secret): AES-GCM ciphertext of a JSON object.
    secret_params = models.TextField(blank=True, default="")
    extra_params = models.JSONField(default=list, blank=True)
    default_headers = models.JSONField(default=dict, blank=True)
    test_request = models.JSONField(default=dict, blank=True)
    pagination = models.JSONField(default=dict, blank=True)
    endpoints = models.JSONField(default=list, blank=True)
    connector = models.CharField(max_length=64, blank=True, default="")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.CUSTOM)
    source_detail = models.CharField(max_length=120, blank=True, default="")
    verify_tls = models.BooleanField(default=True)
    acknowledged_insecure = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "slug"], name="services_service_unique_slug_per_org"
            ),
            models.UniqueConstraint(
                fields=["organization", "name"], name="services_service_unique_name_per_org"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse(
            "services:detail", kwargs={"org": self.organization.slug, "service_id": self.public_id}
        )

    @property
    def secrets_aad(self) -> str:
        return f"services.Service:{self.public_id}:secret_params"

    def get_secret_params(self) -> dict[str, str]:
        from traysvc import crypto

        return (
            crypto.decrypt_json(self.secret_params, aad=self.secrets_aad)
            if self.secret_params
            else {}
        )

    def set_secret_params(self, values: dict[str, str]) -> None:
        from traysvc import crypto

        self.secret_params = crypto.encrypt_json(values, aad=self.secrets_aad) if values else ""


class AuthStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    EXPIRING = "expiring", "Expiring soon"
    REFRESH_FAILED = "refresh_failed", "Refresh failed"
    NEEDS_REAUTH = "needs_reauth", "Needs reconnecting"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"
    PENDING = "pending", "Pending"


class Authentication(TimestampedModel):
    """A credential for a service (or a catalog connector). Secrets are one encrypted blob."""

    organization = models.ForeignKey(
        "workspaces.Organization", on_delete=models.CASCADE, related_name="authentications"
    )
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="authentications"
    )
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.PROTECT, related_name="authentications"
    )
    connector = models.CharField(max_length=64, blank=True, default="")
    name = models.CharField(max_length=120)
    status = models.CharField(max_length=20, choices=AuthStatus.choices, default=AuthStatus.ACTIVE)
    secrets = models.TextField(blank=True, default="")
    values = models.JSONField(default=dict, blank=True)
    scopes = models.JSONField(default=list, blank=True)
    token_type = models.CharField(max_length=40, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    refresh_expires_at = models.DateTimeField(null=True, blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_code = models.CharField(max_length=64, blank=True, default="")
    failure_count = models.PositiveIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    # When the current grant (refresh token chain) began: its observed lifetime on death.
    grant_started_at = models.DateTimeField(null=True, blank=True)
    refresh_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(service__isnull=False, connector="")
                    | models.Q(service__isnull=True) & ~models.Q(connector="")
                ),
                name="services_authentication_service_xor_connector",
            ),
            models.UniqueConstraint(
                fields=["workspace", "name"], name="services_authentication_unique_name_per_ws"
            ),
        ]
        indexes = [
            # the refresh sweep: status + expires_at
            models.Index(fields=["status", "expires_at"], name="services_auth_sweep_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse(
            "services:authentication",
            kwargs={"org": self.organization.slug, "authentication_id": self.public_id},
        )

    @property
    def secrets_aad(self) -> str:
        return f"services.Authentication:{self.public_id}:secrets"

    def get_secrets(self) -> dict[str, Any]:
        from traysvc import crypto

        return crypto.decrypt_json(self.secrets, aad=self.secrets_aad) if self.secrets else {}

    def set_secrets(self, values: dict[str, Any]) -> None:
        from traysvc import crypto

        self.secrets = crypto.encrypt_json(values, aad=self.secrets_aad) if values else ""


class OAuthFlow(TimestampedModel):
    """One authorization-code attempt: single use, short-lived, bound to the initiating user."""

    organization = models.ForeignKey(
        "workspaces.Organization", on_delete=models.CASCADE, related_name="+"
    )
    state_hash = models.CharField(max_length=64, unique=True)
    code_verifier = models.TextField(blank=True, default="")  # encrypted
    service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.CASCADE)
    connector = models.CharField(max_length=64, blank=True, default="")
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    authentication = models.ForeignKey(
        Authentication,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Set when reconnecting: the grant replaces this authentication's secrets.",
    )
    name = models.CharField(max_length=120)
    # Non-secret extra parameter values entered before "Connect": they fill {{auth.KEY}} in the
    # OAuth URLs at start and finish, and become the new authentication's values.
    values = models.JSONField(default=dict, blank=True)
    issuer = models.CharField(max_length=500, blank=True, default="")
    redirect_uri = models.CharField(max_length=500)
    return_to = models.CharField(max_length=20, default="page")
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"OAuth flow for {self.name}"

    @property
    def verifier_aad(self) -> str:
        return f"services.OAuthFlow:{self.public_id}:code_verifier"


class GrantLifetime(models.Model):
    """Observed lifetime of a grant that died (invalid_grant, revoked): flags short-lived apps."""

    organization = models.ForeignKey(
        "workspaces.Organization", on_delete=models.CASCADE, related_name="+"
    )
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.CASCADE, related_name="grant_lifetimes"
    )
    connector = models.CharField(max_length=64, blank=True, default="")
    authentication = models.ForeignKey(
        Authentication, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    seconds = models.PositiveIntegerField()
    reason = models.CharField(max_length=64, default="invalid_grant")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # the service page's short-lived-grant flag: service + newest
            models.Index(fields=["service", "-created_at"], name="services_grantlife_svc_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.seconds}s ({self.reason})"
