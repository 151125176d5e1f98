"""CallLog: one row per call, redacted before it is written."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from traysvc.models import TimestampedModel


class CallSource(models.TextChoices):
    CONSOLE = "console", "Console"
    API = "api", "API"
    HEALTH = "health", "Health check"
    TEST = "test", "Test button"
    CODE = "code", "Code"


class CallLog(TimestampedModel):
    # No index of its own: httpclient_recent_idx starts with organization_id and serves the
    # cascade too; one b-tree fewer on the hot path's only write (~15 % of the insert).
    organization = models.ForeignKey(
        "workspaces.Organization",
        on_delete=models.CASCADE,
        related_name="call_logs",
        db_index=False,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    service = models.ForeignKey(
        "services.Service", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    authentication = models.ForeignKey(
        "services.Authentication",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    source = models.CharField(max_length=10, choices=CallSource.choices, default=CallSource.CODE)
    method = models.CharField(max_length=10)
    url = models.TextField()  # redacted: no secret in it
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    elapsed_ms = models.FloatField(default=0)
    ttfb_ms = models.FloatField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    request_headers = models.JSONField(default=list, blank=True)
    request_body = models.TextField(blank=True, default="")
    response_headers = models.JSONField(default=list, blank=True)
    response_body = models.TextField(blank=True, default="")
    response_truncated = models.BooleanField(default=False)
    response_bytes = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    error_kind = models.CharField(max_length=30, blank=True, default="")
    # "Copy as curl" for the call, secrets as placeholders (<TOKEN>).
    curl = models.TextField(blank=True, default="")
    # Redacted extras: retries, pages, redirects, notes, the request as entered (path, query,
    # headers, body type) so the console can load it again.
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # "my recent calls" (GET /calls, console history): org + user, newest first
            models.Index(
                fields=["organization", "user", "-created_at"], name="httpclient_recent_idx"
            ),
            # the retention prune: created_at
            models.Index(fields=["created_at"], name="httpclient_prune_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.url} -> {self.status}"
