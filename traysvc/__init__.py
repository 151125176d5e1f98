"""traysvc project package: settings, URLs, the Celery app, the keyring and egress."""

from traysvc.celery import app as celery_app

__all__ = ["celery_app"]
