"""Sandbox routes, mounted at /sandbox/ only when TRAYSVC_SANDBOX is on.

/sandbox/o/    the OAuth2 authorization server (django-oauth-toolkit): authorize, token,
               revoke_token and the RFC 8414 metadata document. DOT's application
               management pages are not mounted: the sandbox's clients come from
               `manage.py sandbox_setup`.
/sandbox/api/  the demo API those tokens unlock.

No app_name here: DOT reverses its own routes as "oauth2_provider:<name>", so its namespace
must sit at the top level.
"""

from django.urls import include, path
from oauth2_provider import views as dot_views

from sandbox import views

provider_patterns = [
    path("authorize/", dot_views.AuthorizationView.as_view(), name="authorize"),
    path("token/", dot_views.TokenView.as_view(), name="token"),
    path("revoke_token/", dot_views.RevokeTokenView.as_view(), name="revoke-token"),
    path(
        ".well-known/oauth-authorization-server",
        dot_views.OAuthServerMetadataView.as_view(),
        name="oauth-server-metadata",
    ),
]

api_patterns = [
    path("me", views.me, name="me"),
    path("items", views.items, name="items"),
    path("flaky", views.flaky, name="flaky"),
    path("echo", views.echo, name="echo"),
]

urlpatterns = [
    path("o/", include((provider_patterns, "oauth2_provider"))),
    path("api/", include((api_patterns, "sandbox"))),
]
