from django.urls import path

from workspaces import views

app_name = "workspaces"

urlpatterns = [
    path("orgs/new/", views.org_new, name="org_new"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("settings/api-keys/", views.api_keys, name="api_keys"),
    path("settings/api-keys/<uuid:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("o/<slug:org>/", views.org_home, name="home"),
    path("o/<slug:org>/members/", views.members, name="members"),
    path("o/<slug:org>/members/invite/", views.invite, name="invite"),
    path("o/<slug:org>/members/service-owner/", views.service_owner, name="service_owner"),
    path("o/<slug:org>/members/webhook/", views.webhook, name="webhook"),
    path("o/<slug:org>/members/<uuid:membership_id>/role/", views.member_role, name="member_role"),
    path(
        "o/<slug:org>/members/<uuid:membership_id>/remove/",
        views.member_remove,
        name="member_remove",
    ),
    path(
        "o/<slug:org>/invitations/<uuid:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("o/<slug:org>/workspaces/", views.workspace_list, name="workspaces"),
    path("o/<slug:org>/workspaces/<uuid:workspace_id>/", views.workspace_detail, name="workspace"),
    path(
        "o/<slug:org>/workspaces/<uuid:workspace_id>/members/add/",
        views.workspace_member_add,
        name="workspace_member_add",
    ),
    path(
        "o/<slug:org>/workspaces/<uuid:workspace_id>/members/<uuid:membership_id>/remove/",
        views.workspace_member_remove,
        name="workspace_member_remove",
    ),
    path("o/<slug:org>/notifications/", views.notifications, name="notifications"),
]
