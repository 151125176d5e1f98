"""Service pages: org-wide list, detail, catalog templates, edit/delete permissions, tenancy."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils.html import escape

from services import services as svc
from services.models import Authentication, Service, Source
from workspaces.models import AuditEvent

pytestmark = pytest.mark.django_db

CLIENT_SECRET = "view-secret-5a4b3c"


def make(membership: Any, name: str = "Airtable", **over: Any) -> Service:
    fields: dict[str, Any] = {
        "name": name,
        "base_url": "https://api.airtable.com/v0",
        "auth_method": "token",
        "auth_params": {"placement": "bearer"},
        "test_request": {"method": "GET", "path": "/meta/whoami"},
    }
    fields.update(over)
    return svc.service_create(membership=membership, **fields)


def oauth(membership: Any, name: str = "Spotify") -> Service:
    return make(membership, name, base_url="https://api.spotify.com/v1", auth_method="oauth2",
                auth_params={"client_id": "cid", "client_secret": CLIENT_SECRET,
                             "authorize_url": "https://accounts.spotify.com/authorize",
                             "token_url": "https://accounts.spotify.com/api/token"})  # fmt: skip


def url(service: Service, action: str = "") -> str:
    return f"/o/{service.organization.slug}/services/{service.public_id}/" + (
        f"{action}/" if action else ""
    )


def test_every_member_sees_every_service_of_the_org(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    make(actors.member_m, "Airtable")
    oauth(actors.admin_m, "Spotify")
    make(actors.outsider_m, "Only in B")
    for user in (actors.owner, actors.admin, actors.member):
        body = client_for(user).get("/o/org-a/services/").content.decode()
        assert 'data-service="Airtable"' in body and 'data-service="Spotify"' in body
        assert "Only in B" not in body
    body = client_for(actors.outsider).get("/o/org-b/services/").content.decode()
    assert "Only in B" in body and "Airtable" not in body


def test_list_page_query_count_does_not_grow_with_services(  # type: ignore[no-untyped-def]
    actors, client_for, django_assert_max_num_queries
) -> None:
    client = client_for(actors.member)
    make(actors.member_m, "One")
    with django_assert_max_num_queries(8):
        assert client.get("/o/org-a/services/").status_code == 200
    for n in range(6):
        make(actors.admin_m if n % 2 else actors.owner_m, f"More {n}")
    with django_assert_max_num_queries(8):
        response = client.get("/o/org-a/services/")
    assert response.content.decode().count("data-service=") == 7


def test_outsider_gets_404_for_every_service_page(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    service = oauth(actors.member_m)
    outsider = client_for(actors.outsider)
    for action in ("", "edit", "delete", "export", "transfer"):
        assert outsider.get(url(service, action)).status_code == 404
        assert outsider.post(url(service, action), {"confirm": "on"}).status_code == 404
    pages = ["", "new/", "catalog/", "import/", "import/openapi/",
             f"transfer/{actors.member_m.public_id}/"]  # fmt: skip
    for page in pages:
        assert outsider.get(f"/o/org-a/services/{page}").status_code == 404, page
        assert outsider.post(f"/o/org-a/services/{page}", {"name": "x"}).status_code == 404, page
    # Org B's own URL with org A's service id: still not found.
    assert outsider.get(f"/o/org-b/services/{service.public_id}/").status_code == 404
    assert Service.objects.filter(pk=service.pk).exists()
    assert Service.objects.count() == 1


def test_detail_shows_redirect_uri_and_never_the_secret(actors, client_for, settings) -> None:  # type: ignore[no-untyped-def]
    settings.TRAYSVC_PUBLIC_URL = "https://traysvc.example.net"
    service = oauth(actors.member_m)
    body = client_for(actors.admin).get(url(service)).content.decode()
    assert (
        '<code id="oauth-redirect-uri">https://traysvc.example.net/oauth2/callback</code>' in body
    )
    assert CLIENT_SECRET not in body
    assert "client_secret" in body and "never shown" in body


@pytest.mark.parametrize(
    ("who", "status"), [("member", 403), ("admin", 200), ("owner", 200)]
)  # fmt: skip
def test_owner_or_admin_may_edit_others_may_not(actors, client_for, who, status) -> None:  # type: ignore[no-untyped-def]
    # Never their own: the member tries the admin's service, admins try the member's.
    owned_by = {"member": actors.admin_m, "admin": actors.member_m, "owner": actors.member_m}
    service = make(owned_by[who])
    client = client_for(getattr(actors, who))
    assert client.get(url(service, "edit")).status_code == status
    assert client.get(url(service, "delete")).status_code == status
    response = client.post(url(service, "delete"), {"confirm": "on"})
    assert response.status_code == (302 if status == 200 else 403)
    assert Service.objects.filter(pk=service.pk).exists() is (status != 200)


def test_the_owner_may_edit_their_own_service(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    service = make(actors.member_m)
    client = client_for(actors.member)
    detail = client.get(url(service)).content.decode()
    assert url(service, "edit") in detail
    data = {"name": "Airtable v0", "base_url": "https://api.airtable.com/v0/",
            "auth_method": "token", "auth-placement": "bearer", "test_method": "GET",
            "test_path": "/meta/whoami"}  # fmt: skip
    assert client.post(url(service, "edit"), data).status_code == 302
    service.refresh_from_db()
    assert service.name == "Airtable v0" and service.base_url == "https://api.airtable.com/v0"
    assert AuditEvent.objects.filter(action="service.update", target_id=service.public_id).exists()


def test_member_cannot_edit_others_service(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    service = make(actors.admin_m)
    client = client_for(actors.member)
    response = client.post(url(service, "edit"), {"name": "Hijacked", "base_url": "https://x.io",
                                                  "auth_method": "none"})  # fmt: skip
    assert response.status_code == 403
    service.refresh_from_db()
    assert service.name == "Airtable"
    assert url(service, "edit") not in client.get(url(service)).content.decode()


def test_delete_with_authentications_asks_for_confirmation(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    service = make(actors.member_m)
    for n in range(2):
        Authentication.objects.create(organization=actors.org_a, service=service, name=f"a{n}",
                                      workspace=actors.member_m.personal_workspace)  # fmt: skip
    client = client_for(actors.member)
    page = client.get(url(service, "delete")).content.decode()
    assert "2 authentications use this service" in page
    refused = client.post(url(service, "delete"), {})
    assert refused.status_code == 400
    assert escape(svc.DELETE_NEEDS_CONFIRMATION.format(count=2)) in refused.content.decode()
    assert Service.objects.filter(pk=service.pk).exists()
    assert Authentication.objects.count() == 2
    done = client.post(url(service, "delete"), {"confirm": "on"})
    assert done.status_code == 302
    assert not Service.objects.exists() and not Authentication.objects.exists()
    event = AuditEvent.objects.get(action="service.delete")
    assert event.details["authentications_deleted"] == 2


def test_catalog_lists_connectors_with_template_links(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    body = client_for(actors.member).get("/o/org-a/services/catalog/").content.decode()
    for key in ("spotify", "airtable", "github", "slack", "zendesk"):
        assert f'data-connector="{key}"' in body
        assert f"/o/org-a/services/new/?template={key}" in body


def test_spotify_template_prefills_an_oauth2_service(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for(actors.member)
    page = client.get("/o/org-a/services/new/?template=spotify").content.decode()
    assert 'value="https://api.spotify.com/v1"' in page
    assert 'value="https://accounts.spotify.com/authorize"' in page
    assert 'value="https://accounts.spotify.com/api/token"' in page
    assert 'value="user-read-email user-read-private"' in page
    assert '<option value="oauth2" selected>' in page
    assert 'hx-get="/o/org-a/services/new/?template=spotify"' in page  # htmx keeps the template
    swapped = client.get("/o/org-a/services/new/?template=spotify&auth_method=oauth2",
                         HTTP_HX_REQUEST="true").content.decode()  # fmt: skip
    assert 'value="https://accounts.spotify.com/api/token"' in swapped and "<html" not in swapped
    data = {"name": "Spotify", "base_url": "https://api.spotify.com/v1", "auth_method": "oauth2",
            "auth-client_id": "my-client", "auth-client_secret": CLIENT_SECRET,
            "auth-authorize_url": "https://accounts.spotify.com/authorize",
            "auth-token_url": "https://accounts.spotify.com/api/token",
            "auth-scopes": "user-read-email user-read-private", "auth-pkce": "on",
            "auth-grant_type": "authorization_code", "auth-token_placement": "bearer",
            "auth-token_endpoint_auth": "basic", "auth-expired_status_codes": "401",
            "test_method": "GET", "test_path": "/me", "pagination_kind": "link",
            "source": "catalog", "source_detail": "spotify"}  # fmt: skip
    response = client.post("/o/org-a/services/new/?template=spotify", data)
    assert response.status_code == 302, response.content.decode()
    service = Service.objects.get()
    assert service.source == Source.CATALOG and service.source_detail == "spotify"
    assert service.auth_params["token_endpoint_auth"] == "basic"
    assert service.get_secret_params() == {"client_secret": CLIENT_SECRET}


def test_airtable_template_prefills_a_token_service(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    page = client_for(actors.member).get("/o/org-a/services/new/?template=airtable")
    body = page.content.decode()
    assert 'value="https://api.airtable.com/v0"' in body
    assert '<option value="token" selected>' in body
    assert '<option value="bearer" selected>' in body
    assert 'value="/meta/whoami"' in body


def test_zendesk_template_prefills_its_authentication_parameter(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    body = client_for(actors.member).get("/o/org-a/services/new/?template=zendesk").content
    assert b'name="param-key" value="subdomain"' in body
    assert b'value="https://{{auth.subdomain}}.zendesk.com/api/v2"' in body


def test_vocabulary_help_says_parameters_are_query_parameters(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    body = client_for(actors.member).get("/o/org-a/services/new/").content.decode()
    assert "parameters are query parameters" in body
    assert "maxRecords=3" in body
