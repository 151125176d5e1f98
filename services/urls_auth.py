"""Authentication pages, added to services/urls.py (namespace "services").

The OAuth2 callback is not here: its path is fixed at /oauth2/callback (traysvc/urls.py).
"""

from django.urls import path

from services import views_auth as views

A = "o/<slug:org>/authentications/"
ONE = A + "<uuid:authentication_id>/"

urlpatterns = [
    path(A, views.authentication_list, name="authentications"),
    path(A + "new/", views.authentication_new, name="authentication_new"),
    path(A + "connect/", views.oauth_start, name="oauth_start"),
    path(ONE, views.authentication_detail, name="authentication"),
    path(ONE + "edit/", views.authentication_edit, name="authentication_edit"),
    path(ONE + "delete/", views.authentication_delete_view, name="authentication_delete"),
    path(ONE + "reconnect/", views.authentication_reconnect, name="authentication_reconnect"),
    path(ONE + "refresh/", views.authentication_refresh_view, name="authentication_refresh"),
]
