from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "sandbox"
    verbose_name = "Sandbox provider and demo API"

    def ready(self) -> None:
        from sandbox.seed import seed_sandbox_services
        from services.seed import register_demo_seed_hook

        # seed_demo (in services) adds the Sandbox services only while this app is installed.
        register_demo_seed_hook(seed_sandbox_services)
