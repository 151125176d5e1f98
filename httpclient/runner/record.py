"""Writing the CallLog row of a call (already redacted) and pruning old rows."""

from __future__ import annotations

import functools
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models
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
) -> uuid.UUID:
    """One INSERT; returns the row's public_id. No model instance and no full_clean(): both
    cost more than the database's own work on the hot path, and every value here was produced
    by the runner (already redacted), not typed by a user."""
    limit = int(settings.HTTPCLIENT_CALLLOG_BODY_CHARS)
    response_body, cut = excerpt(result.body_kind, result.body, result.body_base64, limit=limit)
    request = result.request
    request_body = (request.body if request else "")[:limit]
    now = timezone.now()
    public_id = uuid.uuid4()
    signed_in = user is not None and getattr(user, "is_authenticated", False)
    # Whatever a caller typed may end up here (a refused path, a header name), and no database
    # stores a lone surrogate: every text goes through clean().
    row = {
        "organization_id": organization_id,
        "public_id": public_id,
        "created_at": now,
        "updated_at": now,
        "user_id": user.pk if signed_in else None,
        "service_id": service_id,
        "authentication_id": authentication_id,
        "source": source[:10],
        "method": clean(request.method if request else "")[:10],
        "url": clean(result.url or (request.url if request else "")),
        "status": result.status,
        "elapsed_ms": round(result.elapsed_ms, 3),
        "ttfb_ms": round(result.ttfb_ms, 3) if result.ttfb_ms is not None else None,
        "attempts": min(result.attempts, 32767),
        "request_headers": clean(request.headers if request else []),
        "request_body": clean(request_body),
        "response_headers": clean(result.headers),
        "response_body": clean(response_body),
        "response_truncated": result.truncated or cut,
        "response_bytes": result.body_bytes,
        "error": clean(result.error[:2000]),
        "error_kind": result.error_kind[:30],
        "curl": clean(result.curl),
        "details": clean(details),
    }
    insert_row(row)
    return public_id


# How each column's value goes to the database, decided once from the field's type: what
# Field.get_db_prep_save does for such values, without its per-call layers (pre_save, the
# prep chain, a model instance: ~60 % of the write's cost in Python).
_JSON, _DATETIME, _UUID, _PLAIN = "json", "datetime", "uuid", "plain"
_PLAIN_FIELDS = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.FloatField,
    models.BooleanField,
)


def _kind(field: models.Field) -> str:
    if isinstance(field, models.JSONField):
        return _JSON
    if isinstance(field, models.DateTimeField):
        return _DATETIME
    if isinstance(field, models.UUIDField):
        return _UUID
    if isinstance(field, models.ForeignKey):
        return _kind(field.target_field)  # the referenced key's type (an integer pk here)
    if isinstance(field, _PLAIN_FIELDS):
        return _PLAIN
    raise TypeError(f"CallLog.{field.name}: {type(field).__name__} needs an adapter in record.py")


@functools.cache
def _insert_plan(vendor: str) -> tuple[str, tuple[tuple[str, str, Any], ...]]:
    """INSERT for CallLog built once from its metadata (identifiers quoted, values bound)."""
    fields = tuple(f for f in CallLog._meta.concrete_fields if not f.primary_key)
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {qn(CallLog._meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608
    return sql, tuple((f.attname, _kind(f), getattr(f, "encoder", None)) for f in fields)


def insert_row(row: dict[str, Any]) -> None:
    """Insert one CallLog row given as {attname: value}; every concrete column must be there."""
    sql, columns = _insert_plan(connection.vendor)
    ops = connection.ops
    native_uuid = connection.features.has_native_uuid_field
    params: list[Any] = []
    for attname, kind, encoder in columns:
        value = row[attname]
        if value is not None and kind != _PLAIN:
            if kind == _JSON:
                value = ops.adapt_json_value(value, encoder)
            elif kind == _DATETIME:
                value = ops.adapt_datetimefield_value(value)
            elif not native_uuid:
                value = value.hex
        params.append(value)
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
