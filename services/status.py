"""Authentication status: the one place it changes, what each status means, and how to fix it.

Every status change goes through `authentication_transition`, which audits it and notifies
people (email, in-app, the org webhook) on each move into a failing state and on recovery.
Health checks (the service's test request, run by httpclient) report what they saw through
`authentication_report_check`; the refresh code reports through `authentication_transition`.
"""

from __future__ import annotations

import logging
import statistics
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from services.models import Authentication, AuthStatus, GrantLifetime, Service
from workspaces.services import audit

logger = logging.getLogger(__name__)

FAILING = frozenset(
    {AuthStatus.REFRESH_FAILED, AuthStatus.NEEDS_REAUTH, AuthStatus.EXPIRED, AuthStatus.REVOKED}
)
WARNING = frozenset({AuthStatus.EXPIRING})
# Statuses that still let calls go out (the token works, or may work again after a retry).
USABLE = frozenset({AuthStatus.ACTIVE, AuthStatus.EXPIRING, AuthStatus.REFRESH_FAILED})

# What each status means, and the fix, in words a user reads on the authentication page.
STATUS_EXPLANATIONS: dict[str, str] = {
    AuthStatus.ACTIVE: "Working: calls use this authentication.",
    AuthStatus.EXPIRING: (
        "Working for now, but the provider's refresh token for this grant expires soon; "
        "after that it cannot be refreshed."
    ),
    AuthStatus.REFRESH_FAILED: (
        "The last refresh failed for a reason that is usually temporary (the provider was "
        "down, slow or rate limiting). traysvc retries automatically with backoff."
    ),
    AuthStatus.NEEDS_REAUTH: (
        "The provider no longer accepts this grant: it was revoked, it expired at the provider, "
        "or the app's access was removed."
    ),
    AuthStatus.EXPIRED: (
        "The credential has expired and cannot be refreshed (the provider gave no refresh "
        "token, or the refresh token itself expired)."
    ),
    AuthStatus.REVOKED: (
        "The provider refused this credential: it was revoked, replaced or deleted at the provider."
    ),
    AuthStatus.PENDING: "Not connected yet.",
}
STATUS_FIXES: dict[str, str] = {
    AuthStatus.ACTIVE: "",
    AuthStatus.EXPIRING: "Reconnect before it expires so calls keep working.",
    AuthStatus.REFRESH_FAILED: (
        "Nothing to do unless it keeps failing; then check the provider's status, or Reconnect."
    ),
    AuthStatus.NEEDS_REAUTH: "Reconnect to authorize traysvc again.",
    AuthStatus.EXPIRED: "Reconnect to authorize traysvc again.",
    AuthStatus.REVOKED: "Reconnect: authorize again, or edit it and enter a new token.",
    AuthStatus.PENDING: "Finish connecting it.",
}

CHECK_REVOKED = (
    "The provider refused this credential (HTTP {status}) during a health check: it was "
    "revoked or replaced at the provider. Reconnect: edit it and enter a new one."
)
CHECK_NEEDS_REAUTH = (
    "The provider refused the access token (HTTP {status}) during a health check, even after a "
    "refresh: the grant was probably revoked at the provider. Reconnect to authorize again."
)
CHECK_ERROR_CODE = "health_check"

GRANT_FLAG = (
    "Grants for this service keep dying after about {hours} hours. The provider may have this "
    "app in test / unverified status: publish or verify the app at the provider."
)
GRANT_FLAG_MIN_DEATHS = 2
GRANT_FLAG_MAX_MEDIAN = timedelta(days=7)
GRANT_FLAG_WINDOW = timedelta(days=90)
GRANT_FLAG_SAMPLE = 20
MARK_USED_EVERY = timedelta(minutes=1)


def explain_status(status: str) -> tuple[str, str]:
    """(what it means, how to fix it) for a status; the fix is "" when nothing is wrong."""
    return STATUS_EXPLANATIONS.get(status, ""), STATUS_FIXES.get(status, "")


def is_oauth2(authentication: Authentication) -> bool:
    """Does this authentication hold an OAuth2 grant (directly or through its connector)?"""
    from services.authentications import effective_method_key

    return effective_method_key(authentication) == "oauth2"


@transaction.atomic
def authentication_transition(
    *, authentication: Authentication, status: str, error: str = "", code: str = ""
) -> Authentication:
    """Set status and last error; audit and notify when the status really changes.

    Notifies on every move into a failing (or expiring) state and on recovery to active.
    Staying in the same status only updates the error text (a retry that failed again).
    """
    if status not in AuthStatus.values:
        raise ValueError(f"unknown authentication status {status!r}")
    previous = authentication.status
    authentication.last_error = error
    authentication.last_error_code = code[:64]
    fields = ["last_error", "last_error_code", "updated_at"]
    if status == previous:
        authentication.save(update_fields=fields)
        return authentication
    authentication.status = status
    authentication.save(update_fields=[*fields, "status"])
    audit(
        organization=authentication.organization,
        actor=None,
        action="authentication.status",
        target_type="authentication",
        target_id=authentication.public_id,
        details={"from": previous, "to": status, "code": code[:64]},
    )
    logger.info(
        "authentication %s status %s -> %s (%s)", authentication.public_id, previous, status, code
    )
    alarming = status in FAILING or status in WARNING
    recovered = status == AuthStatus.ACTIVE and (previous in FAILING or previous in WARNING)
    if alarming or recovered:
        from services.notify import notify_transition

        notify_transition(authentication=authentication, previous=previous)
    return authentication


def authentication_mark_used(
    authentication: Authentication, *, actor: AbstractBaseUser | None = None
) -> None:
    """Record that a call used it: last_used_at and an audit row, at most once a minute."""
    now = timezone.now()
    if authentication.last_used_at and now - authentication.last_used_at < MARK_USED_EVERY:
        return
    with transaction.atomic():
        Authentication.objects.filter(pk=authentication.pk).update(last_used_at=now)
        authentication.last_used_at = now
        audit(
            organization=authentication.organization,
            actor=actor,
            action="authentication.use",
            target_type="authentication",
            target_id=authentication.public_id,
        )


@transaction.atomic
def authentication_report_check(
    *, authentication: Authentication, ok: bool, status_code: int | None, error: str
) -> Authentication:
    """Record a health check's result (the service's test request).

    401/403 means the provider refuses the credential: a non-OAuth token is revoked; an OAuth2
    grant needs reconnecting (callers report OAuth2 401s after the refresh-and-retry, which the
    runner does). Other failures (provider down, timeouts) say nothing about the credential, so
    the status stays. A passing check clears a failure that an earlier check diagnosed.
    """
    authentication.last_checked_at = timezone.now()
    authentication.save(update_fields=["last_checked_at", "updated_at"])
    if ok:
        if authentication.status in FAILING and authentication.last_error_code == CHECK_ERROR_CODE:
            authentication_transition(authentication=authentication, status=AuthStatus.ACTIVE)
        return authentication
    if status_code not in (401, 403):
        logger.info(
            "health check of authentication %s failed without a verdict on the credential: %s",
            authentication.public_id,
            status_code or error[:200],
        )
        return authentication
    if is_oauth2(authentication):
        if authentication.status in (AuthStatus.NEEDS_REAUTH, AuthStatus.REFRESH_FAILED):
            return authentication  # the refresh attempt already said what is wrong
        status, message = AuthStatus.NEEDS_REAUTH, CHECK_NEEDS_REAUTH
    else:
        status, message = AuthStatus.REVOKED, CHECK_REVOKED
    return authentication_transition(
        authentication=authentication,
        status=status,
        error=message.format(status=status_code),
        code=CHECK_ERROR_CODE,
    )


def _lifetimes(**filters: object) -> list[int]:
    since = timezone.now() - GRANT_FLAG_WINDOW
    return list(
        GrantLifetime.objects.filter(created_at__gte=since, **filters)
        .order_by("-created_at")
        .values_list("seconds", flat=True)[:GRANT_FLAG_SAMPLE]
    )


def learned_grant_lifetime(
    *, service: Service | None = None, organization_id: int | None = None, connector: str = ""
) -> timedelta | None:
    """The median observed lifetime of dead grants of a service (or a connector), if learned."""
    if service is not None:
        seconds = _lifetimes(service=service)
    elif connector and organization_id is not None:
        seconds = _lifetimes(organization_id=organization_id, connector=connector, service=None)
    else:
        return None
    if len(seconds) < GRANT_FLAG_MIN_DEATHS:
        return None
    return timedelta(seconds=statistics.median(seconds))


def _flag_for(median: timedelta | None) -> str | None:
    if median is None or median >= GRANT_FLAG_MAX_MEDIAN:
        return None
    hours = max(1, round(median.total_seconds() / 3600))
    return GRANT_FLAG.format(hours=hours)


def service_grant_flag(service: Service) -> str | None:
    """The warning for the service page when its refresh tokens keep dying young, else None."""
    return _flag_for(learned_grant_lifetime(service=service))


def connector_grant_flag(*, organization_id: int, connector: str) -> str | None:
    """The same warning for the authentications made directly for a catalog connector."""
    return _flag_for(learned_grant_lifetime(organization_id=organization_id, connector=connector))
