"""The Celery app (`celery -A traysvc worker|beat`); the beat schedule lives here, in one place."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "traysvc.settings")

app = Celery("traysvc")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _beat_schedule(sender: Celery, **_: object) -> None:
    """Periodic work; periods come from settings so operators can tune them."""
    from django.conf import settings

    sender.conf.beat_schedule = {
        name: entry for name, entry in _schedule(settings).items() if entry is not None
    }


def _schedule(settings: object) -> dict[str, dict | None]:
    return {
        "refresh-sweep": {
            "task": "services.tasks.refresh_sweep_task",
            "schedule": float(settings.AUTH_REFRESH_SWEEP_SECONDS),  # type: ignore[attr-defined]
        },
        "health-sweep": {
            "task": "httpclient.tasks.health_sweep_task",
            "schedule": 3600.0,
        },
        "prune-call-logs": {
            "task": "httpclient.tasks.prune_call_logs_task",
            "schedule": 3600.0,
        },
    }
