"""Retention: the periodic task deletes CallLog rows older than CALLLOG_RETENTION_DAYS."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from httpclient.models import CallLog
from httpclient.runner.record import calllog_prune
from httpclient.tasks import prune_call_logs_task

pytestmark = pytest.mark.django_db


def _log(org, days_old: float) -> CallLog:  # type: ignore[no-untyped-def]
    log = CallLog.objects.create(organization=org, method="GET", url="https://h/")
    CallLog.objects.filter(pk=log.pk).update(created_at=timezone.now() - timedelta(days=days_old))
    return log


def test_prune_task_honours_the_retention_setting(actors, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CALLLOG_RETENTION_DAYS = 7
    old = [_log(actors.org_a, 8), _log(actors.org_b, 30)]
    kept = [_log(actors.org_a, 6.9), _log(actors.org_a, 0)]
    assert prune_call_logs_task.apply().get() == 2
    remaining = set(CallLog.objects.values_list("pk", flat=True))
    assert remaining == {k.pk for k in kept} and not remaining & {o.pk for o in old}
    settings.CALLLOG_RETENTION_DAYS = 1
    assert prune_call_logs_task.apply().get() == 1


def test_prune_works_in_batches(actors, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import httpclient.runner.record as record

    monkeypatch.setattr(record, "PRUNE_BATCH", 2)
    for _ in range(5):
        _log(actors.org_a, 40)
    assert calllog_prune(days=30) == 5 and not CallLog.objects.exists()


def test_the_beat_schedule_names_the_task() -> None:
    from django.conf import settings

    from traysvc.celery import _schedule

    assert _schedule(settings)["prune-call-logs"]["task"] == prune_call_logs_task.name
