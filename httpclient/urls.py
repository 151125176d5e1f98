"""The request console and the pages of past calls."""

from django.urls import path

from httpclient import views

app_name = "httpclient"

urlpatterns = [
    path("o/<slug:org>/console/", views.console, name="console"),
    path("o/<slug:org>/console/calls/<uuid:call_id>/", views.call_detail, name="call_detail"),
]
