from django.apps import AppConfig


class TraysvcConfig(AppConfig):
    name = "traysvc"
    verbose_name = "traysvc"
