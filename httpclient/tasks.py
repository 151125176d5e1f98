"""Celery tasks of the httpclient app (the beat schedule lives in traysvc/celery.py).

Import convention: ``from httpclient.tasks import prune_call_logs_task``; its service function
is ``httpclient.runner.record.calllog_prune``.
"""

from __future__ import annotations

import logging

from celery import shared_task

from httpclient.runner.record import calllog_prune

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True, soft_time_limit=300, time_limit=360)
def prune_call_logs_task() -> int:
    """Delete CallLog rows older than CALLLOG_RETENTION_DAYS (hourly, from beat)."""
    deleted = calllog_prune()
    if deleted:
        logger.info("pruned %d call log rows past the retention", deleted)
    return deleted


# ---- health checks (the authentications part; service functions in httpclient/health.py) ----


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=75)
def health_check_task(authentication_id: int) -> None:
    """Run one authentication's health check (the service's test request) and report it."""
    from httpclient.health import check_authentication
    from services.models import Authentication

    authentication = (
        Authentication.objects.select_related("organization", "service")
        .filter(pk=authentication_id)
        .first()
    )
    if authentication is None:
        return
    outcome = check_authentication(authentication=authentication)
    logger.info(
        "health check of authentication %s: %s",
        authentication.public_id,
        "ok" if outcome.ok else (outcome.message or "failed")[:200],
    )


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=60)
def health_sweep_task() -> int:
    """Hourly, from beat: one health_check_task per authentication not checked lately."""
    from django.db import transaction

    from httpclient.health import authentications_to_check

    ids = authentications_to_check()

    def enqueue() -> None:
        for position, authentication_id in enumerate(ids):
            try:
                health_check_task.delay(authentication_id)
            except Exception as exc:  # broker down: the next sweep picks the rest up
                logger.warning(
                    "health sweep: could not queue %d checks (%s)", len(ids) - position, exc
                )
                return

    if ids:
        transaction.on_commit(enqueue)
    return len(ids)
