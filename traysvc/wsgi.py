"""WSGI entry point: `gunicorn traysvc.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "traysvc.settings")

application = get_wsgi_application()
