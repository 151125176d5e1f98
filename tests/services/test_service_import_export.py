"""Export (no secrets) and import into another org; the OpenAPI import page's draft flow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.html import escape

from services import service_io
from services import services as svc
from services.auth_methods import oauth2 as oauth2_method
from services.models import Service, Source
from services.openapi_import import NO_SERVERS

pytestmark = pytest.mark.django_db

CLIENT_SECRET = "export-secret-1a2b3c"
TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "openapi"


def zendesk(membership: Any, **over: Any) -> Service:
    fields: dict[str, Any] = {
        "name": "Zendesk",
        "description": "Support tickets",
        "base_url": "https://{{auth.subdomain}}.zendesk.com/api/v2",
        "auth_method": "oauth2",
        "auth_params": {
            "client_id": "zd-client", "client_secret": CLIENT_SECRET,
            "grant_type": "client_credentials",
            "token_url": "https://{{auth.subdomain}}.zendesk.com/oauth/tokens",
        },
        "extra_params": [{"key": "subdomain", "label": "Subdomain", "required": True,
                          "pattern": "^[a-z0-9-]+$", "example": "acme"}],
        "default_headers": {"Accept": "application/json"},
        "test_request": {"method": "GET", "path": "/users/me"},
        "pagination": {"kind": "cursor", "cursor_path": "meta.after_cursor",
                       "cursor_param": "page[after]"},
        "endpoints": [{"method": "get", "path": "/tickets", "summary": "List tickets"}],
    }  # fmt: skip
    fields.update(over)
    return svc.service_create(membership=membership, **fields)


def test_export_omits_every_secret(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    service = zendesk(actors.member_m)
    response = client_for(actors.admin).get(f"/o/org-a/services/{service.public_id}/export/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="zendesk.json"'
    assert CLIENT_SECRET not in response.content.decode()
    assert "client_secret" not in response.content.decode()
    data = response.json()
    assert data["format"] == service_io.EXPORT_FORMAT and data["version"] == 1
    assert data["auth_params"]["client_id"] == "zd-client"


def test_round_trip_into_another_org(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    original = zendesk(actors.member_m)
    exported = client_for(actors.member).get(
        f"/o/org-a/services/{original.public_id}/export/").content  # fmt: skip
    client = client_for(actors.outsider)
    # Without the secret an export never carries, the client-credentials grant is refused.
    upload = SimpleUploadedFile("zendesk.json", exported, content_type="application/json")
    refused = client.post("/o/org-b/services/import/", {"file": upload})
    assert refused.status_code == 400
    assert escape(oauth2_method.CLIENT_SECRET_REQUIRED) in refused.content.decode()
    assert 'name="secret_client_secret"' in refused.content.decode()
    assert not Service.objects.filter(organization=actors.org_b).exists()
    upload = SimpleUploadedFile("zendesk.json", exported, content_type="application/json")
    response = client.post("/o/org-b/services/import/",
                           {"file": upload, "secret_client_secret": "org-b-secret"})  # fmt: skip
    assert response.status_code == 302
    copy = Service.objects.get(organization=actors.org_b)
    assert copy.owner_workspace == actors.outsider_m.personal_workspace
    assert copy.source == Source.IMPORT
    for field in (
        "name",
        "description",
        "base_url",
        "auth_method",
        "auth_params",
        "extra_params",
        "default_headers",
        "test_request",
        "pagination",
        "endpoints",
    ):
        assert getattr(copy, field) == getattr(original, field), field  # fmt: skip
    assert copy.get_secret_params() == {"client_secret": "org-b-secret"}
    assert service_io.service_export(service=copy) == json.loads(exported)


def test_import_of_a_pasted_document(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    doc = service_io.service_export(service=zendesk(actors.member_m, auth_params={
        "client_id": "c", "authorize_url": "https://{{auth.subdomain}}.zendesk.com/oauth/a",
        "token_url": "https://{{auth.subdomain}}.zendesk.com/oauth/tokens"}))  # fmt: skip
    response = client_for(actors.outsider).post("/o/org-b/services/import/",
                                                {"text": json.dumps(doc)})  # fmt: skip
    assert response.status_code == 302
    assert Service.objects.filter(organization=actors.org_b, name="Zendesk").exists()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda d: d.pop("base_url"), "base_url", service_io.IMPORT_FIELD_MISSING),
        (lambda d: d.update(owner="me"), "owner", service_io.IMPORT_FIELD_UNKNOWN),
        (lambda d: d.update(format="other"), "format",
         service_io.IMPORT_NOT_EXPORT.format(format=service_io.EXPORT_FORMAT)),
        (lambda d: d.update(base_url="file:///etc/passwd"), "base_url",
         svc.BASE_URL_INVALID.format(problem="must start with http:// or https://")),
        (lambda d: d["extra_params"].clear(), "base_url",
         "Unknown template key {{auth.subdomain}}: add “subdomain” to the authentication "
         "parameters, or fix the name."),
    ],
)  # fmt: skip
def test_import_errors_are_field_errors_and_nothing_is_saved(
    actors, change, field, message
) -> None:  # type: ignore[no-untyped-def]
    doc = service_io.service_export(service=zendesk(actors.member_m))
    change(doc)
    with pytest.raises(svc.ValidationError) as info:
        service_io.service_import(membership=actors.outsider_m, data=json.dumps(doc),
                                  secrets={"client_secret": "x"})  # fmt: skip
    assert message in info.value.message_dict[field]
    assert not Service.objects.filter(organization=actors.org_b).exists()


def test_import_rejects_non_json_and_huge_files(actors) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(svc.ValidationError) as info:
        service_io.service_import(membership=actors.outsider_m, data="{not json")
    assert "document" in info.value.message_dict
    with pytest.raises(svc.ValidationError) as info:
        service_io.service_import(
            membership=actors.outsider_m, data=" " * (service_io.MAX_IMPORT_BYTES + 1)
        )
    assert info.value.message_dict["document"] == [
        service_io.IMPORT_TOO_LARGE.format(limit=service_io.MAX_IMPORT_BYTES)]  # fmt: skip


SMALL_SPEC = """\
openapi: 3.0.3
info: {title: Widgets API, description: Widgets.}
servers: [{url: "https://api.widgets.example/v2"}]
components:
  securitySchemes:
    key: {type: apiKey, in: header, name: X-Widget-Key}
security: [{key: []}]
paths:
  /widgets: {get: {summary: List widgets}, post: {summary: Create a widget}}
  /widgets/{id}: {get: {summary: One widget}}
"""


def test_openapi_page_shows_a_draft_then_saves_it(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for(actors.member)
    draft = client.post("/o/org-a/services/import/openapi/", {"text": SMALL_SPEC})
    assert draft.status_code == 200
    body = draft.content.decode()
    assert 'value="Widgets API"' in body and 'value="https://api.widgets.example/v2"' in body
    assert '<option value="header" selected>' in body and 'value="X-Widget-Key"' in body
    assert 'action="/o/org-a/services/new/"' in body
    assert not Service.objects.exists()  # a draft until the user saves it
    endpoints = [{"method": "get", "path": "/widgets", "summary": "List widgets",
                  "operation_id": ""}]  # fmt: skip
    saved = client.post("/o/org-a/services/new/", {
        "name": "Widgets API", "base_url": "https://api.widgets.example/v2",
        "auth_method": "token", "auth-placement": "header", "auth-header_name": "X-Widget-Key",
        "test_method": "GET", "source": "openapi", "source_detail": "Widgets API",
        "endpoints": json.dumps(endpoints)})  # fmt: skip
    assert saved.status_code == 302, saved.content.decode()
    service = Service.objects.get()
    assert service.source == Source.OPENAPI
    assert service.endpoints == endpoints
    assert service.auth_params["header_name"] == "X-Widget-Key"


def test_openapi_page_reports_document_problems(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for(actors.member)
    no_servers = "openapi: 3.0.0\ninfo: {title: X}\npaths: {}\n"
    response = client.post("/o/org-a/services/import/openapi/", {"text": no_servers})
    assert response.status_code == 400
    assert escape(NO_SERVERS) in response.content.decode()
    response = client.post("/o/org-a/services/import/openapi/", {"text": "a: [unclosed"})
    assert response.status_code == 400 and "Not valid" in response.content.decode()
    assert not Service.objects.exists()


@pytest.mark.skipif(not (TESTDATA / "spotify-web-api.yaml").exists(),
                    reason="../shared/testdata/openapi is not here")  # fmt: skip
def test_openapi_page_with_spotifys_published_document(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    upload = SimpleUploadedFile("spotify.yaml", (TESTDATA / "spotify-web-api.yaml").read_bytes())
    response = client_for(actors.member).post("/o/org-a/services/import/openapi/",
                                              {"file": upload})  # fmt: skip
    assert response.status_code == 200
    body = response.content.decode()
    assert 'value="https://accounts.spotify.com/authorize"' in body
    assert 'value="https://accounts.spotify.com/api/token"' in body
    assert '<option value="oauth2" selected>' in body
    assert "endpoint(s) will be offered in the console" in body
