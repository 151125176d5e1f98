from django.apps import AppConfig


class ServicesConfig(AppConfig):
    name = "services"
    verbose_name = "Services and authentications"

    def ready(self) -> None:
        from services import guards  # noqa: F401  (registers the membership-removal guard)
        from services.auth_methods import set_connector_lookup
        from services.catalog import connector_exists

        # The pre-existing method accepts only connectors that are in the shipped catalog.
        set_connector_lookup(connector_exists)
