"""`authentication_refresh`: the one way an OAuth2 grant is refreshed.

The Celery task, the beat sweep, the API's "refresh now" and the runner's refresh-on-401 all
call it. It serialises refreshes of one grant: a Redis lock when REDIS_URL is set (several
hosts, one broker); without Redis an exclusive file lock under VAR_DIR/locks (the embedded
mode is one machine: the web process and the Celery worker share it); then, where the database
has row locks, the row lock (``SELECT ... FOR UPDATE``, bounded by a lock timeout on
PostgreSQL). A lock that cannot be had in time fails the attempt with RefreshError (LOCK_BUSY):
it never refreshes without it. After locking it re-checks in a fresh read: when another process
refreshed meanwhile (the access token is no longer ``expected_token``, or the grant is no
longer due) it returns without calling the provider, so a task delivered twice refreshes once.

SQLite has no row locks, and a transaction that read before the token call cannot write after
it once another connection committed (SQLITE_BUSY_SNAPSHOT: the sandbox provider writes its
rotated token to the same file during the call). So there, with the file or Redis lock held,
nothing stays open across the call: a fresh autocommit read, the call, then one short write
transaction. Transactions are never made IMMEDIATE: that would block the provider's write.

Outcomes: a rotated refresh token is stored in the same transaction as the new access token;
an answer without one keeps the stored one. A permanent refusal (invalid_grant, a 4xx other
than 408/409/423/425/429) moves the grant to needs_reauth and records its observed lifetime;
a temporary one (5xx, timeout, those codes, an HTML page) to refresh_failed with exponential
backoff and jitter. Failures raise RefreshError after the new state is committed.
"""

# ruff: noqa: S105 - message constants mention tokens; none is a secret

from __future__ import annotations

import logging
import secrets as std_secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import OperationalError, transaction
from django.utils import timezone

from services.auth_methods.oauth2 import (
    TokenError,
    token_request_for_client_credentials,
    token_request_for_refresh,
)
from services.authentications import effective_method_key, target_of
from services.grants import (
    GRANT_FIELDS,
    healthy_status,
    oauth_client_for,
    send_token_request,
    store_token_result,
)
from services.models import Authentication, AuthStatus, GrantLifetime
from services.refresh_locks import (
    LOCK_BUSY,
    RefreshError,
    bound_lock_wait,
    has_row_locks,
    is_lock_timeout,
    redis_client,
    refresh_lock,
    restore_lock_wait,
)
from services.refresh_locks import LOCK_FILE_UNAVAILABLE as LOCK_FILE_UNAVAILABLE  # re-exported
from services.refresh_locks import LOCK_UNAVAILABLE as LOCK_UNAVAILABLE  # re-exported
from services.refresh_locks import lock_file_path as lock_file_path  # re-exported
from services.status import authentication_transition
from traysvc import egress
from workspaces.services import audit

logger = logging.getLogger(__name__)

REASON_SWEEP = "sweep"
REASON_MANUAL = "manual"
REASON_CALL = "call_401"
REASON_HEALTH = "health_check"
REASON_COMMAND = "command"

BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600

NOT_REFRESHABLE = "This authentication does not use OAuth2: there is nothing to refresh."
NOT_CONNECTED = "This authentication has no grant yet: connect it first."
ALREADY_DEAD = "This grant needs reconnecting, so it was not refreshed. {error}"
NO_REFRESH_TOKEN = (
    "The provider gave no refresh token for this grant, so it cannot be refreshed: "
    "Reconnect when it expires."
)
EXPIRED_NO_REFRESH = (
    "The access token expired and the provider gave no refresh token to renew it. "
    "Reconnect to authorize again."
)
REJECTED_NO_REFRESH = (
    "The provider rejected the access token and there is no refresh token to renew it. "
    "Reconnect to authorize again."
)
REFRESH_TOKEN_EXPIRED = (
    "The grant's refresh token expired on {date}, so it cannot be refreshed. "
    "Reconnect to authorize again."
)
GRANT_DEAD = (
    "The provider refused the refresh token ({error}{description}): the grant was revoked or "
    "expired at the provider. Reconnect to authorize again."
)
CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
CLIENT_REFUSED = (
    "The provider refused the service's client credentials ({error}{description}). Check the "
    "service's client id and secret, then refresh again."
)
MISCONFIGURED = "The service's OAuth2 settings cannot be used: {problem} Fix the service."
TEMPORARY = (
    "Refreshing failed for a reason that is usually temporary: {reason}. "
    "traysvc retries automatically (next attempt around {when})."
)
TEMP_TIMEOUT = "the token endpoint did not answer in time"
TEMP_UNREACHABLE = "the token endpoint could not be reached ({detail})"
TEMP_PROVIDER = "the provider answered {error}{description} (HTTP {status})"


# ---- timing ---------------------------------------------------------------------------------


def backoff(failures: int) -> timedelta:
    """Exponential backoff with equal jitter, capped at BACKOFF_CAP_SECONDS."""
    raw = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, failures - 1))
    jitter = std_secrets.SystemRandom().uniform(0, raw / 2)
    return timedelta(seconds=raw / 2 + jitter)


def refresh_ahead(authentication: Authentication) -> timedelta:
    """How long before expiry to refresh: the setting, or half the token's lifetime if shorter
    (a token that lives 60 s must not be refreshed on every sweep)."""
    ahead = timedelta(seconds=settings.AUTH_REFRESH_AHEAD_SECONDS)
    issued = authentication.last_refreshed_at or authentication.grant_started_at
    if authentication.expires_at is not None and issued is not None:
        lifetime = authentication.expires_at - issued
        if lifetime > timedelta(0):
            ahead = min(ahead, lifetime / 2)
    return ahead


def is_due(authentication: Authentication, now: datetime) -> bool:
    """Should the sweep refresh this grant now?"""
    if authentication.expires_at is None:
        return False
    if authentication.status in (AuthStatus.NEEDS_REAUTH, AuthStatus.REVOKED, AuthStatus.EXPIRED):
        return False
    if authentication.next_retry_at is not None and authentication.next_retry_at > now:
        return False
    return authentication.expires_at - now <= refresh_ahead(authentication)


# ---- the refresh ----------------------------------------------------------------------------


def authentication_refresh(
    *,
    authentication_id: int,
    reason: str,
    expected_token: str | None = None,
    force: bool | None = None,
    actor: AbstractBaseUser | None = None,
) -> Authentication:
    """Refresh the grant unless another worker just did; return the (fresh) authentication.

    ``expected_token``: the access token the caller saw rejected (refresh-on-401); when the
    stored one differs, someone already refreshed. ``force`` (default: reason "manual")
    refreshes even when the grant is not yet due. ``actor``: the user who asked ("Refresh
    now"), for the audit row; None for the sweep and the runner. Raises RefreshError when not
    refreshed.
    """
    if force is None:
        force = reason == REASON_MANUAL
    with refresh_lock(authentication_id):
        try:
            if has_row_locks():
                with transaction.atomic():
                    bound_lock_wait()
                    authentication = _load(authentication_id, lock_row=True)
                    restore_lock_wait()
                    outcome = _refresh_locked(
                        authentication, reason=reason, expected_token=expected_token,
                        force=force, actor=actor,
                    )  # fmt: skip
            else:
                # No row locks (SQLite): the file / Redis lock excludes other refreshers, and
                # this fresh read (autocommit, after the lock) sees what another process
                # committed; no transaction stays open across the token call.
                authentication = _load(authentication_id, lock_row=False)
                outcome = _refresh_locked(
                    authentication, reason=reason, expected_token=expected_token, force=force,
                    actor=actor,
                )  # fmt: skip
        except OperationalError as exc:
            if is_lock_timeout(exc):
                logger.info("refresh of %s: row lock not had in time", authentication_id)
                raise RefreshError(LOCK_BUSY, code="lock_busy", temporary=True) from exc
            raise
    if isinstance(outcome, RefreshError):
        raise outcome
    return outcome


def _load(authentication_id: int, *, lock_row: bool) -> Authentication:
    rows = Authentication.objects.select_related("organization", "service")
    if lock_row:
        rows = rows.select_for_update(of=("self",))
    return rows.get(pk=authentication_id)


def _refresh_locked(
    authentication: Authentication,
    *,
    reason: str,
    expected_token: str | None,
    force: bool,
    actor: AbstractBaseUser | None,
) -> Authentication | RefreshError:
    now = timezone.now()
    if effective_method_key(authentication) != "oauth2":
        return RefreshError(NOT_REFRESHABLE, code="not_refreshable", temporary=False)
    stored = authentication.get_secrets()
    if not stored.get("access_token"):
        return RefreshError(NOT_CONNECTED, code="not_connected", temporary=False)
    if expected_token is not None:
        if stored.get("access_token") != expected_token:
            return authentication  # refreshed (or reconnected) by someone else meanwhile
    elif not force and not is_due(authentication, now):
        return authentication  # not due: e.g. the second delivery of the same task
    dead = (AuthStatus.NEEDS_REAUTH, AuthStatus.REVOKED, AuthStatus.EXPIRED)
    if authentication.status in dead and not force:
        message = ALREADY_DEAD.format(error=authentication.last_error).strip()
        return RefreshError(message, code=authentication.status, temporary=False)
    try:
        client = oauth_client_for(target_of(authentication), values=authentication.values)
    except (ValidationError, PermissionDenied) as exc:
        problem = " ".join(getattr(exc, "messages", [str(exc)]))
        return _temporary(authentication, now, MISCONFIGURED.format(problem=problem),
                          code="misconfigured", reason_text=None)  # fmt: skip
    sent_refresh: str | None = None
    if client.params.grant_type == "client_credentials":
        request = token_request_for_client_credentials(
            client.params, client_secret=client.client_secret
        )
    else:
        sent_refresh = stored.get("refresh_token")
        refused = _unrefreshable(authentication, now, sent_refresh, expected_token)
        if refused is not None:
            return refused
        request = token_request_for_refresh(
            client.params, client_secret=client.client_secret, refresh_token=sent_refresh or ""
        )
    try:
        result = send_token_request(request)
    except (egress.EgressError, TokenError) as exc:
        with transaction.atomic():
            return _failed(authentication, now, exc, sent_refresh=sent_refresh)
    with transaction.atomic():  # the new tokens, the audit row and the status: all or nothing
        rotated = store_token_result(
            authentication, result, now=now, new_grant=False, default_scopes=client.params.scopes
        )
        authentication.last_refreshed_at = now
        authentication.refresh_count += 1
        authentication.save(update_fields=GRANT_FIELDS)
        audit(
            organization=authentication.organization,
            actor=actor,
            action="authentication.refresh",
            target_type="authentication",
            target_id=authentication.public_id,
            details={"reason": reason, "rotated": rotated},
        )
        status, error = healthy_status(authentication, now)
        authentication_transition(authentication=authentication, status=status, error=error)
    logger.info("refreshed authentication %s (%s)", authentication.public_id, reason)
    return authentication


def _unrefreshable(
    authentication: Authentication,
    now: datetime,
    refresh_token: str | None,
    expected_token: str | None,
) -> RefreshError | None:
    """Why an authorization-code grant cannot be refreshed at all (state updated), or None."""
    if not refresh_token:
        if expected_token is not None:
            status, message, code = AuthStatus.NEEDS_REAUTH, REJECTED_NO_REFRESH, "rejected"
        elif authentication.expires_at is not None and authentication.expires_at <= now:
            status, message, code = AuthStatus.EXPIRED, EXPIRED_NO_REFRESH, "expired"
        else:
            return RefreshError(NO_REFRESH_TOKEN, code="no_refresh_token", temporary=False)
        authentication_transition(
            authentication=authentication, status=status, error=message, code=code
        )
        return RefreshError(message, code=code, temporary=False)
    ends = authentication.refresh_expires_at
    if ends is not None and ends <= now:
        message = REFRESH_TOKEN_EXPIRED.format(date=ends.strftime("%Y-%m-%d %H:%M UTC"))
        authentication_transition(
            authentication=authentication, status=AuthStatus.EXPIRED, error=message,
            code="refresh_token_expired",
        )  # fmt: skip
        return RefreshError(message, code="refresh_token_expired", temporary=False)
    return None


def _describe_temporary(exc: Exception) -> str:
    if isinstance(exc, egress.EgressError):
        if exc.kind == "timeout":
            return TEMP_TIMEOUT
        return TEMP_UNREACHABLE.format(detail=exc.message[:200])
    assert isinstance(exc, TokenError)  # noqa: S101 - narrowing
    if exc.code in ("invalid_response", "http_error"):
        return exc.description[:200]
    description = f": {exc.description[:200]}" if exc.description else ""
    return TEMP_PROVIDER.format(error=exc.code[:80], description=description, status=exc.status)


@transaction.atomic
def _temporary(
    authentication: Authentication,
    now: datetime,
    message: str,
    *,
    code: str,
    reason_text: str | None,
) -> RefreshError:
    authentication.failure_count += 1
    authentication.next_retry_at = now + backoff(authentication.failure_count)
    authentication.save(update_fields=["failure_count", "next_retry_at", "updated_at"])
    if reason_text is not None:
        when = authentication.next_retry_at.strftime("%H:%M:%S UTC")
        message = TEMPORARY.format(reason=reason_text, when=when)
    authentication_transition(
        authentication=authentication, status=AuthStatus.REFRESH_FAILED, error=message,
        code=code,
    )  # fmt: skip
    return RefreshError(message, code=code, temporary=True, retry_at=authentication.next_retry_at)


def _failed(
    authentication: Authentication, now: datetime, exc: Exception, *, sent_refresh: str | None
) -> Authentication | RefreshError:
    permanent = isinstance(exc, TokenError) and exc.permanent
    code = exc.code if isinstance(exc, TokenError) else f"egress_{exc.kind}"  # type: ignore[attr-defined]
    logger.warning(
        "refresh of authentication %s failed (%s, %s)",
        authentication.public_id, code, "permanent" if permanent else "temporary",
    )  # fmt: skip
    if not permanent:
        return _temporary(authentication, now, "", code=code, reason_text=_describe_temporary(exc))
    assert isinstance(exc, TokenError)  # noqa: S101 - narrowing
    if sent_refresh is not None:
        # Another worker may have rotated the grant meanwhile (a process without our lock):
        # then the refusal is of a token we should not have sent, and the grant is fine.
        fresh = Authentication.objects.select_related("organization", "service").get(
            pk=authentication.pk
        )
        if fresh.get_secrets().get("refresh_token") != sent_refresh:
            logger.info("refresh of %s: refused token was already rotated", fresh.public_id)
            return fresh
    description = f": {exc.description[:200]}" if exc.description else ""
    # The client itself refused (client credentials, or a bad client id/secret on any grant):
    # reconnecting will not help, fixing the service's OAuth client will; not a grant death.
    if sent_refresh is None or exc.code in CLIENT_ERRORS:
        message = CLIENT_REFUSED.format(error=exc.code[:80], description=description)
    else:
        message = GRANT_DEAD.format(error=exc.code[:80], description=description)
        if authentication.grant_started_at is not None:
            GrantLifetime.objects.create(
                organization=authentication.organization,
                service=authentication.service,
                connector=authentication.connector,
                authentication=authentication,
                seconds=max(0, int((now - authentication.grant_started_at).total_seconds())),
                reason=exc.code[:64],
            )
    authentication.next_retry_at = None
    authentication.save(update_fields=["next_retry_at", "updated_at"])
    authentication_transition(
        authentication=authentication, status=AuthStatus.NEEDS_REAUTH, error=message,
        code=exc.code[:64],
    )  # fmt: skip
    return RefreshError(message, code=exc.code, temporary=False)


# ---- the sweep ------------------------------------------------------------------------------


def _oauth2_connectors() -> list[str]:
    from services.catalog import load_catalog

    return [key for key, c in load_catalog().items() if c.auth_method == "oauth2"]


def due_authentication_ids(*, now: datetime | None = None) -> list[int]:
    """OAuth2 grants (active, expiring, or refresh_failed past their retry time) due now."""
    from django.db.models import Q

    now = now or timezone.now()
    horizon = now + timedelta(seconds=settings.AUTH_REFRESH_AHEAD_SECONDS)
    candidates = (
        Authentication.objects.filter(
            status__in=[AuthStatus.ACTIVE, AuthStatus.EXPIRING, AuthStatus.REFRESH_FAILED],
            expires_at__isnull=False,
            expires_at__lte=horizon,
        )
        .filter(Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now))
        .filter(
            Q(service__auth_method="oauth2")
            | Q(service__isnull=True, connector__in=_oauth2_connectors())
        )
        .only(
            "id", "status", "expires_at", "next_retry_at", "last_refreshed_at", "grant_started_at"
        )
        .order_by("expires_at")
    )
    return [a.pk for a in candidates if is_due(a, now)]


def warn_expiring(*, now: datetime | None = None) -> int:
    """Move active grants whose refresh token expires within the warning window to expiring."""
    now = now or timezone.now()
    from services.grants import refresh_warn_window

    soon = Authentication.objects.filter(
        status=AuthStatus.ACTIVE, refresh_expires_at__isnull=False,
        refresh_expires_at__lte=now + refresh_warn_window(),
    ).select_related("organization", "service")  # fmt: skip
    count = 0
    for authentication in soon:
        status, error = healthy_status(authentication, now)
        if status != authentication.status:
            authentication_transition(authentication=authentication, status=status, error=error)
            count += 1
    return count


def redis_reachable() -> bool:
    """False when REDIS_URL is set but Redis does not answer (the sweep then waits a period)."""
    client = redis_client()
    if client is None:
        return True
    import redis

    try:
        client.ping()
    except redis.RedisError as exc:
        logger.warning(
            "refresh sweep skipped: Redis is unreachable (%s); the next one resumes", exc
        )
        return False
    return True
