"""URL composition root: the only module that knows every app."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from services import views_auth
from traysvc import views
from traysvc.api import api
from workspaces import views as workspace_views

urlpatterns = [
    path("", workspace_views.home, name="root"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("workspaces.urls")),
    path("", include("services.urls")),
    path("oauth2/callback", views_auth.oauth_callback, name="oauth_callback"),
    path("", include("httpclient.urls_auth_test")),
    path("", include("httpclient.urls")),
]

if settings.TRAYSVC_SANDBOX:
    urlpatterns += [path("sandbox/", include("sandbox.urls"))]
