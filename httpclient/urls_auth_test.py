"""The authentication page's "Test" button (included from traysvc/urls.py).

It lives in httpclient because it makes a call: the arrows keep pointing down
(httpclient -> services -> workspaces).
"""

from django.urls import path

from httpclient import views_auth_test

app_name = "auth_test"

urlpatterns = [
    path(
        "o/<slug:org>/authentications/<uuid:authentication_id>/test/",
        views_auth_test.authentication_test,
        name="authentication_test",
    ),
]
