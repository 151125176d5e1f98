from django.apps import AppConfig


class HttpclientConfig(AppConfig):
    name = "httpclient"
    verbose_name = "HTTP client"
