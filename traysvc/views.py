"""Project-level views: the health check."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache


def _check_db() -> dict[str, object]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 — any failure is reported, not raised
        return {"ok": False, "error": exc.__class__.__name__}
    return {
        "ok": True,
        "vendor": connection.vendor,
        "ms": round((time.perf_counter() - started) * 1000, 2),
    }


def _check_broker() -> dict[str, object]:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        import os

        ready = os.path.isdir(folder)
        return {"ok": ready, "kind": "filesystem", "ready": ready}
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "kind": "redis", "error": exc.__class__.__name__}
    return {"ok": True, "kind": "redis"}


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness + readiness for load balancers and compose: 200 when db and broker answer."""
    db = _check_db()
    broker = _check_broker()
    ok = bool(db["ok"]) and bool(broker["ok"])
    return JsonResponse({"ok": ok, "db": db, "broker": broker}, status=200 if ok else 503)
