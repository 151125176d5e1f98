from django.apps import AppConfig


class TraysvcConfig(AppConfig):
    name = "traysvc"
    verbose_name = "traysvc"

    def ready(self) -> None:
        from django.conf import settings

        from traysvc import checks  # registers traysvc.E001 and E002

        if not settings.DEBUG:
            # gunicorn and celery never run system checks: refuse a bad keyring or a bad
            # SSRF allow-list at startup, not at the first call.
            from traysvc import crypto

            crypto.check_keyring()
            checks.check_allow_networks()
