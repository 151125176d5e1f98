"""Writing the CallLog row of a call (already redacted) and pruning old rows."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from httpclient.models import CallLog
from httpclient.runner.response import clean, excerpt
from httpclient.runner.types import Result

PRUNE_BATCH = 1000


def calllog_record(
    *,
    organization_id: int,
    user: Any,
    service_id: int | None,
    authentication_id: int | None,
    source: str,
    result: Result,
    details: dict[str, Any],
) -> CallLog:
    """One INSERT. No full_clean(): it would cost a uniqueness query on the hot path, and
    every value here was produced by the runner (already redacted), not typed by a user."""
    limit = int(settings.HTTPCLIENT_CALLLOG_BODY_CHARS)
    response_body, cut = excerpt(result.body_kind, result.body, result.body_base64, limit=limit)
    request = result.request
    request_body = (request.body if request else "")[:limit]
    # Whatever a caller typed may end up here (a refused path, a header name), and no database
    # stores a lone surrogate: every text goes through clean().
    log = CallLog(
        organization_id=organization_id,
        user=user if user is not None and getattr(user, "is_authenticated", False) else None,
        service_id=service_id,
        authentication_id=authentication_id,
        source=source[:10],
        method=clean(request.method if request else "")[:10],
        url=clean(result.url or (request.url if request else "")),
        status=result.status,
        elapsed_ms=round(result.elapsed_ms, 3),
        ttfb_ms=round(result.ttfb_ms, 3) if result.ttfb_ms is not None else None,
        attempts=min(result.attempts, 32767),
        request_headers=clean(request.headers if request else []),
        request_body=clean(request_body),
        response_headers=clean(result.headers),
        response_body=clean(response_body),
        response_truncated=result.truncated or cut,
        response_bytes=result.body_bytes,
        error=clean(result.error[:2000]),
        error_kind=result.error_kind[:30],
        curl=clean(result.curl),
        details=clean(details),
    )
    _insert(log)
    return log


@functools.cache
def _insert_sql(vendor: str) -> tuple[str, tuple[Any, ...]]:
    """INSERT for CallLog built once from its metadata (identifiers quoted, values bound)."""
    fields = tuple(f for f in CallLog._meta.concrete_fields if not f.primary_key)
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {qn(CallLog._meta.db_table)} ({columns}) VALUES ({marks})", fields  # noqa: S608


def _insert(log: CallLog) -> None:
    """The row without Model.save()'s per-call machinery (half the time on the hot path).

    CallLog has no signals or custom save; pre_save still fills created_at/updated_at and
    get_db_prep_save encodes JSON and UUIDs for the database in use. The instance gets no pk:
    callers use its public_id."""
    sql, fields = _insert_sql(connection.vendor)
    params = [f.get_db_prep_save(f.pre_save(log, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def calllog_prune(*, days: int | None = None) -> int:
    """Delete CallLog rows older than the retention (CALLLOG_RETENTION_DAYS); returns the count.

    In batches, so a large backlog never holds one long lock on the table."""
    keep_days = days if days is not None else int(settings.CALLLOG_RETENTION_DAYS)
    cutoff = timezone.now() - timedelta(days=keep_days)
    deleted = 0
    while True:
        ids = list(
            CallLog.objects.filter(created_at__lt=cutoff)
            .order_by("created_at")
            .values_list("pk", flat=True)[:PRUNE_BATCH]
        )
        if not ids:
            return deleted
        count, _ = CallLog.objects.filter(pk__in=ids).delete()
        deleted += count
