from django.apps import AppConfig


class ServicesConfig(AppConfig):
    name = "services"
    verbose_name = "Services and authentications"

    def ready(self) -> None:
        from services import guards  # noqa: F401  (registers the membership-removal guard)
