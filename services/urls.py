from django.urls import path

from services import urls_auth, views

app_name = "services"

S = "o/<slug:org>/services/"
ONE = S + "<uuid:service_id>/"

urlpatterns = [
    path(S, views.service_list, name="list"),
    path(S + "new/", views.service_new, name="new"),
    path(S + "catalog/", views.connector_catalog, name="catalog"),
    path(S + "import/", views.service_import, name="import"),
    path(S + "import/openapi/", views.service_import_openapi, name="import_openapi"),
    path(
        S + "transfer/<uuid:membership_id>/",
        views.member_services_transfer,
        name="transfer_member",
    ),
    path(ONE, views.service_detail, name="detail"),
    path(ONE + "edit/", views.service_edit, name="edit"),
    path(ONE + "delete/", views.service_delete, name="delete"),
    path(ONE + "export/", views.service_export, name="export"),
    path(ONE + "transfer/", views.service_transfer, name="transfer"),
]

# The authentications pages share the "services" namespace (services/urls_auth.py).
urlpatterns += urls_auth.urlpatterns
