"""The services JSON API: CONTRACT shapes, each auth method's validation, permissions, tenancy."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from services import services as svc
from services.auth_methods import ACK_REQUIRED
from services.auth_methods import oauth2 as oauth2_method
from services.auth_methods.base import HEADER_NAME_REQUIRED, INVALID_CHOICE, UNKNOWN_PARAM
from services.auth_methods.preexisting import CONNECTOR_UNKNOWN as METHOD_CONNECTOR_UNKNOWN
from services.models import Authentication, Service
from services.schemas import ERR_URL_SCHEME, ERR_URL_USERINFO
from services.templating import UNKNOWN_AUTH_KEY
from traysvc.api import NOT_FOUND
from workspaces.models import AuditEvent
from workspaces.services import api_key_create, workspace_create_shared

pytestmark = pytest.mark.django_db

SERVICE_KEYS = {"id", "name", "slug", "base_url", "auth_method", "owner", "connector",
                "extra_params", "created_at"}  # fmt: skip
CLIENT_SECRET = "s3cr3t-client-secret-value"


def api(membership: Any) -> Client:
    _key, full = api_key_create(membership=membership)
    return Client(headers={"Authorization": f"Bearer {full}"})


def post(client: Client, body: dict[str, Any]) -> Any:
    return client.post("/api/v1/services", json.dumps(body), content_type="application/json")


def body(**over: Any) -> dict[str, Any]:
    data = {"name": "Airtable", "base_url": "https://api.airtable.com/v0", "auth_method": "token",
            "auth_params": {"placement": "bearer"},
            "test_request": {"method": "GET", "path": "/meta/whoami"}}  # fmt: skip
    data.update(over)
    return data


OAUTH2 = {
    "client_id": "abc",
    "client_secret": CLIENT_SECRET,
    "authorize_url": "https://accounts.spotify.com/authorize",
    "token_url": "https://accounts.spotify.com/api/token",
    "scopes": ["user-read-email"],
}

VALID = [
    ("none", {}, False),
    ("token", {"placement": "header", "header_name": "X-Api-Key", "prefix": "Token"}, False),
    ("token", {"placement": "query", "query_name": "api_key"}, False),
    ("basic", {}, False),
    ("digest", {}, False),
    ("oauth2", OAUTH2, False),
    (
        "oauth2",
        {
            "client_id": "x",
            "client_secret": "y",
            "grant_type": "client_credentials",
            "token_url": "https://auth.example.com/token",
        },
        False,
    ),  # fmt: skip
    ("oauth1", {"consumer_key": "ck", "consumer_secret": "cs"}, True),
    ("soap", {"password_type": "PasswordDigest"}, True),
    ("preexisting", {"connector": "spotify"}, False),
]

INVALID = [
    ("none", {"foo": "x"}, False, "auth_params.foo", UNKNOWN_PARAM),
    ("token", {"placement": "header"}, False, "auth_params.header_name", HEADER_NAME_REQUIRED),
    (
        "token",
        {"placement": "cookie"},
        False,
        "auth_params.placement",
        INVALID_CHOICE.format(choices="bearer, header, query, basic"),
    ),  # fmt: skip
    ("basic", {"username": "u"}, False, "auth_params.username", UNKNOWN_PARAM),
    ("digest", {"realm": "r"}, False, "auth_params.realm", UNKNOWN_PARAM),
    (
        "oauth2",
        {k: v for k, v in OAUTH2.items() if k != "token_url"},
        False,
        "auth_params.token_url",
        oauth2_method.TOKEN_URL_REQUIRED,
    ),  # fmt: skip
    (
        "oauth2",
        {
            "client_id": "x",
            "grant_type": "client_credentials",
            "token_url": "https://a.example.com/t",
        },
        False,
        "auth_params.client_secret",
        oauth2_method.CLIENT_SECRET_REQUIRED,
    ),  # fmt: skip
    (
        "oauth1",
        {"consumer_key": "ck", "consumer_secret": "cs"},
        False,
        "acknowledge_insecure",
        ACK_REQUIRED,
    ),  # fmt: skip
    ("soap", {}, False, "acknowledge_insecure", ACK_REQUIRED),
]


@pytest.mark.parametrize(("method", "params", "ack"), VALID)
def test_each_auth_method_accepts_valid_params(actors, method, params, ack) -> None:  # type: ignore[no-untyped-def]
    response = post(
        api(actors.member_m),
        body(name=f"S {method}", auth_method=method, auth_params=params, acknowledge_insecure=ack),
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    service = Service.objects.get(public_id=data["id"])
    assert service.auth_method == method
    assert service.owner_workspace == actors.member_m.personal_workspace
    assert CLIENT_SECRET not in response.content.decode()
    assert CLIENT_SECRET not in json.dumps(service.auth_params)
    if "client_secret" in params:
        assert service.get_secret_params()["client_secret"] == params["client_secret"]
        assert data["secret_params_set"] == ["client_secret"]
    if method == "preexisting":
        assert data["connector"] == "spotify"


@pytest.mark.parametrize(("method", "params", "ack", "field", "message"), INVALID)
def test_each_auth_method_rejects_invalid_params_with_field_errors(  # type: ignore[no-untyped-def]
    actors, method, params, ack, field, message
) -> None:
    response = post(
        api(actors.member_m), body(auth_method=method, auth_params=params, acknowledge_insecure=ack)
    )
    assert response.status_code == 422
    assert message in response.json()["errors"][field]
    assert not Service.objects.exists()


def test_preexisting_needs_a_catalog_connector(actors) -> None:  # type: ignore[no-untyped-def]
    response = post(
        api(actors.member_m),
        body(auth_method="preexisting", auth_params={"connector": "no-such-api"}),
    )
    assert response.status_code == 422
    assert response.json()["errors"]["auth_params.connector"][0] in (
        METHOD_CONNECTOR_UNKNOWN,
        svc.CONNECTOR_UNKNOWN.format(key="no-such-api"),
    )


@pytest.mark.parametrize(
    ("over", "field", "message"),
    [
        ({"base_url": "ftp://api.example.com"}, "base_url",
         svc.BASE_URL_INVALID.format(problem=ERR_URL_SCHEME)),
        ({"base_url": "https://user:pw@api.example.com"}, "base_url",
         svc.BASE_URL_INVALID.format(problem=ERR_URL_USERINFO)),
        ({"base_url": "https://{{auth.tenant}}.example.com"}, "base_url",
         UNKNOWN_AUTH_KEY.format(ref="{{auth.tenant}}", key="tenant")),
        ({"auth_method": "magic"}, "auth_method",
         svc.UNKNOWN_AUTH_METHOD.format(choices="none, token, basic, digest, oauth2, oauth1, "
                                                "soap, preexisting")),
        ({"extra_params": [{"key": "a", "label": "A"}, {"key": "a", "label": "B"}]},
         "extra_params.1.key", svc.EXTRA_PARAM_DUPLICATE.format(key="a")),
        ({"default_headers": {"Authorization": "x"}}, "default_headers.Authorization",
         svc.HEADER_AUTHORIZATION),
    ],
)  # fmt: skip
def test_bad_input_is_a_field_error_and_nothing_is_saved(actors, over, field, message) -> None:  # type: ignore[no-untyped-def]
    response = post(api(actors.member_m), body(**over))
    assert response.status_code == 422
    assert response.json()["errors"][field] == [message]
    assert not Service.objects.exists()
    assert not AuditEvent.objects.filter(action="service.create").exists()


def test_unknown_body_field_is_422_not_ignored(actors) -> None:  # type: ignore[no-untyped-def]
    response = post(api(actors.member_m), body(colour="blue"))
    assert response.status_code == 422
    assert "colour" in response.json()["errors"]


def test_duplicate_name_in_org_is_a_field_error(actors) -> None:  # type: ignore[no-untyped-def]
    assert post(api(actors.member_m), body()).status_code == 201
    response = post(api(actors.admin_m), body(name="airtable"))
    assert response.status_code == 422
    assert response.json()["errors"]["name"] == [svc.NAME_TAKEN.format(name="airtable")]
    # Another organization may use the same name.
    assert post(api(actors.outsider_m), body()).status_code == 201


def test_created_only_in_the_personal_workspace(actors) -> None:  # type: ignore[no-untyped-def]
    shared = workspace_create_shared(organization=actors.org_a, name="Team", actor=actors.owner_m)
    client = api(actors.owner_m)
    refused = post(client, body(workspace=str(shared.public_id)))
    assert refused.status_code == 422
    assert refused.json()["errors"]["workspace"] == [svc.SHARED_WORKSPACE_REFUSED]
    assert not Service.objects.exists()
    personal = actors.owner_m.personal_workspace
    ok = post(client, body(workspace=str(personal.public_id)))
    assert ok.status_code == 201
    assert ok.json()["workspace"] == str(personal.public_id)


def test_list_shape_and_org_wide_visibility(actors, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    post(api(actors.member_m), body())
    post(api(actors.admin_m), body(name="Spotify", auth_method="oauth2", auth_params=OAUTH2))
    post(api(actors.outsider_m), body(name="Org B only"))
    client = api(actors.owner_m)
    # API key lookup + rate-limit bucket + one query for the services, however many there are.
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/services")
    assert response.status_code == 200
    rows = response.json()
    assert [r["name"] for r in rows] == ["Airtable", "Spotify"]
    assert SERVICE_KEYS <= set(rows[0])
    assert rows[0]["owner"] == "member@a.example"
    assert CLIENT_SECRET not in response.content.decode()
    for n in range(4):
        post(api(actors.member_m), body(name=f"More {n}"))
    fresh = api(actors.owner_m)  # a new key: the same rate-limit bookkeeping as above
    with django_assert_max_num_queries(8):
        assert len(fresh.get("/api/v1/services").json()) == 6


def test_owner_or_admin_may_patch_and_a_member_may_not(actors) -> None:  # type: ignore[no-untyped-def]
    created = post(api(actors.member_m), body(auth_method="oauth2", auth_params=OAUTH2)).json()
    url = f"/api/v1/services/{created['id']}"
    owner_api = api(actors.owner_m)  # org owner: an admin
    other_member = api(actors.admin_m)
    forbidden = api(actors.outsider_m).patch(url, {"name": "x"}, content_type="application/json")
    assert forbidden.status_code == 404
    from workspaces.models import Role
    from workspaces.services import membership_set_role

    membership_set_role(membership=actors.admin_m, role=Role.MEMBER, actor=actors.owner_m)
    denied = other_member.patch(url, {"name": "Renamed"}, content_type="application/json")
    assert denied.status_code == 403
    assert Service.objects.get().name == "Airtable"
    patched = owner_api.patch(
        url,
        {
            "name": "Renamed",
            "auth_params": {k: v for k, v in OAUTH2.items() if k != "client_secret"},
        },
        content_type="application/json",
    )
    assert patched.status_code == 200, patched.json()
    service = Service.objects.get()
    assert service.name == "Renamed"
    assert service.get_secret_params() == {"client_secret": CLIENT_SECRET}  # kept: write-only
    by_owner = api(actors.member_m).patch(
        url, {"description": "Mine"}, content_type="application/json"
    )
    assert by_owner.status_code == 200
    assert by_owner.json()["description"] == "Mine"


def test_patch_with_bad_input_changes_nothing(actors) -> None:  # type: ignore[no-untyped-def]
    created = post(api(actors.member_m), body()).json()
    response = api(actors.member_m).patch(
        f"/api/v1/services/{created['id']}", {"name": "New", "base_url": "javascript:alert(1)"},
        content_type="application/json")  # fmt: skip
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"base_url"}
    assert Service.objects.get().name == "Airtable"


def test_delete_with_authentications_needs_confirmation(actors) -> None:  # type: ignore[no-untyped-def]
    created = post(api(actors.member_m), body()).json()
    service = Service.objects.get()
    Authentication.objects.create(organization=actors.org_a, workspace=service.owner_workspace,
                                  service=service, name="mine")  # fmt: skip
    url = f"/api/v1/services/{created['id']}"
    client = api(actors.member_m)
    assert api(actors.outsider_m).delete(url).status_code == 404
    conflict = client.delete(url)
    assert conflict.status_code == 409
    assert conflict.json()["detail"].startswith(svc.DELETE_NEEDS_CONFIRMATION.format(count=1))
    assert Service.objects.exists()
    assert client.delete(url + "?delete_authentications=true").status_code == 204
    assert not Service.objects.exists()
    assert not Authentication.objects.exists()


def test_other_orgs_service_is_404(actors) -> None:  # type: ignore[no-untyped-def]
    created = post(api(actors.member_m), body()).json()
    response = api(actors.outsider_m).get(f"/api/v1/services/{created['id']}")
    assert response.status_code == 404
    assert response.json() == {"detail": NOT_FOUND, "errors": {}}
    assert api(actors.outsider_m).get("/api/v1/services").json() == []


def test_connectors_lists_the_catalog(actors) -> None:  # type: ignore[no-untyped-def]
    response = api(actors.member_m).get("/api/v1/connectors")
    assert response.status_code == 200
    rows = {r["key"]: r for r in response.json()}
    assert {"spotify", "airtable", "github", "slack"} <= set(rows)
    assert {"key", "name", "base_url", "auth_method", "docs_url"} <= set(rows["spotify"])
    assert rows["spotify"]["auth_method"] == "oauth2"


def test_without_an_api_key_is_401(actors, client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/api/v1/services").status_code == 401


def test_openapi_schema_documents_the_services_routes(actors) -> None:  # type: ignore[no-untyped-def]
    schema = api(actors.member_m).get("/api/v1/openapi.json").json()
    assert "/api/v1/services" in schema["paths"]
    assert "/api/v1/services/{service_id}" in schema["paths"]
    assert "/api/v1/connectors" in schema["paths"]
