"""Celery tasks of the services app: thin wrappers that take ids and call a service function.

Import convention: ``from services.tasks import refresh_task``; its service function is
``services.refresh.authentication_refresh``. The beat schedule is in traysvc/celery.py.
"""

from __future__ import annotations

import logging
import secrets as std_secrets

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from services.models import Authentication
from services.notify import RETRY, deliver_webhook, webhook_given_up
from services.refresh import (
    REASON_SWEEP,
    RefreshError,
    authentication_refresh,
    backoff,
    due_authentication_ids,
    redis_reachable,
    warn_expiring,
)

logger = logging.getLogger(__name__)

REFRESH_MAX_RETRIES = 3
WEBHOOK_MAX_RETRIES = 8


def _retry_countdown(exc: RefreshError) -> float:
    if exc.retry_at is not None:
        return max(1.0, (exc.retry_at - timezone.now()).total_seconds())
    if exc.code == "lock_busy":
        return 5 + std_secrets.SystemRandom().uniform(0, 5)
    return 30 + std_secrets.SystemRandom().uniform(0, 30)


@shared_task(
    bind=True, ignore_result=True, max_retries=REFRESH_MAX_RETRIES, acks_late=True,
    soft_time_limit=45, time_limit=60,
)  # fmt: skip
def refresh_task(self, authentication_id: int, reason: str = REASON_SWEEP) -> None:  # type: ignore[no-untyped-def]
    """Refresh one grant; temporary failures retry here, permanent ones are recorded and end."""
    try:
        authentication_refresh(authentication_id=authentication_id, reason=reason)
    except Authentication.DoesNotExist:
        logger.info("refresh of authentication %s: it was deleted", authentication_id)
    except RefreshError as exc:
        if exc.temporary and self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=_retry_countdown(exc)) from exc
        if exc.temporary:  # retries spent: the next sweep tries again; say so loudly
            logger.warning(
                "refresh of authentication %s gave up after %d retries (%s); the next sweep "
                "tries again", authentication_id, self.request.retries, exc.code,
            )  # fmt: skip
        else:
            logger.info("refresh of authentication %s ended: %s", authentication_id, exc.code)


def _enqueue(ids: list[int]) -> None:
    for position, authentication_id in enumerate(ids):
        try:
            refresh_task.delay(authentication_id)
        except Exception as exc:  # broker down: stop here, the next sweep picks the rest up
            logger.warning(
                "refresh sweep: could not queue %d of %d refreshes (%s); the next sweep resumes",
                len(ids) - position, len(ids), exc,
            )  # fmt: skip
            return


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=60)
def refresh_sweep_task() -> int:
    """Every AUTH_REFRESH_SWEEP_SECONDS: one refresh_task per grant that is due."""
    if not redis_reachable():
        return 0
    warn_expiring()
    ids = due_authentication_ids()
    if ids:
        transaction.on_commit(lambda: _enqueue(ids))
    logger.info("refresh sweep: %d grants due", len(ids))
    return len(ids)


@shared_task(
    bind=True, ignore_result=True, max_retries=WEBHOOK_MAX_RETRIES, soft_time_limit=30,
    time_limit=40,
)  # fmt: skip
def webhook_task(self, organization_id: int, body: str) -> None:  # type: ignore[no-untyped-def]
    """Deliver one signed webhook; retried with exponential backoff on 5xx, 429 and timeouts."""
    outcome = deliver_webhook(organization_id=organization_id, body=body)
    if outcome == RETRY:
        if self.request.retries >= self.max_retries:
            logger.warning("webhook for organization %s given up", organization_id)
            webhook_given_up(organization_id=organization_id, attempts=self.request.retries + 1)
            return
        countdown = backoff(self.request.retries + 1).total_seconds()
        raise self.retry(countdown=countdown)
