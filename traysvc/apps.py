from django.apps import AppConfig


class TraysvcConfig(AppConfig):
    name = "traysvc"
    verbose_name = "traysvc"

    def ready(self) -> None:
        from django.conf import settings

        from traysvc import checks  # noqa: F401  (registers traysvc.E001)

        if not settings.DEBUG:
            # gunicorn and celery never run system checks: refuse a bad keyring at startup.
            from traysvc import crypto

            crypto.check_keyring()
