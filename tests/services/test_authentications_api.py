"""The authentications JSON API: shapes of CONTRACT.md, no secret in any answer, 404 across orgs."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from services.authentications import USE_CONNECT
from services.models import Authentication, OAuthFlow
from services.refresh import NOT_REFRESHABLE
from traysvc.api import NOT_FOUND
from workspaces.models import AuditEvent

pytestmark = pytest.mark.django_db

TOKEN = "api-tok-SECRET-abcdef123456"  # noqa: S105 - a test value
PASSWORD = "api-pw-SECRET-xyz"  # noqa: S105
CLIENT_SECRET = "api-client-SECRET"  # noqa: S105
SECRETS = (TOKEN, PASSWORD, CLIENT_SECRET)
LIST_KEYS = {
    "id",
    "name",
    "service",
    "connector",
    "workspace",
    "status",
    "scopes",
    "expires_at",
    "last_refreshed_at",
    "last_error",
}
API = "/api/v1"


def _service(membership, name="Tokens", method="token", **kwargs):  # type: ignore[no-untyped-def]
    from services.services import service_create

    kwargs.setdefault("base_url", "https://api.example.com")
    return service_create(membership=membership, name=name, auth_method=method, **kwargs)


@pytest.fixture
def api_for(client):  # type: ignore[no-untyped-def]
    """api_for(membership) -> call(method, path, body=None) -> response, with a fresh API key."""
    from workspaces.services import api_key_create

    def make(membership):  # type: ignore[no-untyped-def]
        _key, raw = api_key_create(membership=membership)

        def call(method: str, path: str, body: dict | None = None):  # type: ignore[no-untyped-def]
            kwargs = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
            if body is not None:
                kwargs.update(data=json.dumps(body), content_type="application/json")
            response = getattr(client, method.lower())(API + path, **kwargs)
            for secret in SECRETS:
                assert secret not in response.content.decode(), (path, secret)
            return response

        return call

    return make


def _create(call, service, name="Prod"):  # type: ignore[no-untyped-def]
    body = {"service": str(service.public_id), "name": name, "values": {"token": TOKEN}}
    return call("POST", "/authentications", body)


@pytest.fixture
def token_service(actors):  # type: ignore[no-untyped-def]
    return _service(actors.owner_m)


def test_create_a_token_authentication_and_list_it(actors, api_for, token_service):  # type: ignore[no-untyped-def]
    call = api_for(actors.owner_m)
    created = call(
        "POST",
        "/authentications",
        {"service": str(token_service.public_id), "name": "Prod", "values": {"token": TOKEN}},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert LIST_KEYS <= set(body)
    assert body["service"] == str(token_service.public_id)
    assert body["connector"] is None
    assert body["workspace"] == str(actors.owner_m.personal_workspace.public_id)
    assert body["status"] == "active"
    assert body["secrets_set"] == ["token"]
    auth = Authentication.objects.get(public_id=body["id"])
    assert auth.get_secrets() == {"token": TOKEN}
    listed = call("GET", "/authentications")
    assert listed.status_code == 200
    [row] = listed.json()
    assert set(row) == LIST_KEYS
    assert row["id"] == body["id"]
    one = call("GET", f"/authentications/{body['id']}")
    assert one.status_code == 200
    assert one.json()["status_explanation"]


def test_create_basic_with_extra_param_values(actors, api_for):  # type: ignore[no-untyped-def]
    service = _service(
        actors.owner_m,
        name="Desk",
        method="basic",
        base_url="https://{{auth.subdomain}}.desk.example",
        extra_params=[
            {"key": "subdomain", "label": "Subdomain", "required": True, "pattern": "^[a-z]+$"}
        ],
    )
    call = api_for(actors.member_m)
    payload = {
        "service": str(service.public_id),
        "name": "Desk",
        "values": {"username": "ada", "password": PASSWORD, "subdomain": "Bad One"},
    }
    bad = call("POST", "/authentications", payload)
    assert bad.status_code == 422
    assert set(bad.json()["errors"]) == {"subdomain"}
    payload["values"]["subdomain"] = "acme"
    good = call("POST", "/authentications", payload)
    assert good.status_code == 201, good.content
    assert good.json()["values"] == {"subdomain": "acme"}
    assert good.json()["secrets_set"] == ["password", "username"]


def test_create_refuses_bad_input_with_field_errors(actors, api_for, token_service):  # type: ignore[no-untyped-def]
    call = api_for(actors.owner_m)
    missing = call(
        "POST",
        "/authentications",
        {"service": str(token_service.public_id), "name": "X", "values": {}},
    )
    assert missing.status_code == 422
    assert missing.json()["errors"] == {"token": ["This field is required."]}
    both = call("POST", "/authentications", {"name": "X", "values": {}})
    assert both.status_code == 422
    unknown = call("POST", "/authentications", {"connector": "no-such", "name": "X"})
    assert unknown.status_code == 422
    assert "connector" in unknown.json()["errors"]
    assert call("POST", "/authentications", {"name": "X", "bogus": 1}).status_code == 422
    assert not Authentication.objects.exists()


def test_another_orgs_service_and_workspace_are_not_found(actors, api_for, token_service):  # type: ignore[no-untyped-def]
    call = api_for(actors.outsider_m)
    response = call(
        "POST",
        "/authentications",
        {"service": str(token_service.public_id), "name": "X", "values": {"token": TOKEN}},
    )
    assert response.status_code == 404
    own = _service(actors.outsider_m, name="B tokens")
    foreign_ws = call(
        "POST",
        "/authentications",
        {
            "service": str(own.public_id),
            "name": "X",
            "values": {"token": TOKEN},
            "workspace": str(actors.owner_m.personal_workspace.public_id),
        },
    )
    assert foreign_ws.status_code == 422
    assert "workspace" in foreign_ws.json()["errors"]
    assert not Authentication.objects.exists()


def test_another_members_personal_workspace_is_forbidden(actors, api_for, token_service):  # type: ignore[no-untyped-def]
    response = api_for(actors.member_m)(
        "POST",
        "/authentications",
        {
            "service": str(token_service.public_id),
            "name": "X",
            "values": {"token": TOKEN},
            "workspace": str(actors.owner_m.personal_workspace.public_id),
        },
    )
    assert response.status_code == 403
    assert not Authentication.objects.exists()


def test_other_orgs_authentications_are_404_and_not_listed(actors, api_for, token_service):  # type: ignore[no-untyped-def]
    owner = api_for(actors.owner_m)
    auth_id = _create(owner, token_service)
    auth_id = auth_id.json()["id"]
    outsider = api_for(actors.outsider_m)
    assert outsider("GET", "/authentications").json() == []
    for method, path in [("GET", ""), ("DELETE", ""), ("POST", "/refresh")]:
        response = outsider(method, f"/authentications/{auth_id}{path}")
        assert response.status_code == 404, (method, path)
        assert response.json()["detail"] == NOT_FOUND
    # Same org, but someone else's personal workspace: also 404.
    assert api_for(actors.member_m)("GET", f"/authentications/{auth_id}").status_code == 404
    assert owner("GET", f"/authentications/{uuid.uuid4()}").status_code == 404
    assert Authentication.objects.filter(public_id=auth_id).exists()


def test_delete_removes_and_audits(actors, api_for, token_service):  # type: ignore[no-untyped-def]
    call = api_for(actors.owner_m)
    auth_id = _create(call, token_service)
    auth_id = auth_id.json()["id"]
    response = call("DELETE", f"/authentications/{auth_id}")
    assert response.status_code == 204
    assert not Authentication.objects.filter(public_id=auth_id).exists()
    assert AuditEvent.objects.filter(action="authentication.delete", target_id=auth_id).exists()


def test_refresh_of_a_token_authentication_is_409_with_the_reason(  # type: ignore[no-untyped-def]
    actors, api_for, token_service
):
    call = api_for(actors.owner_m)
    auth_id = _create(call, token_service)
    response = call("POST", f"/authentications/{auth_id.json()['id']}/refresh")
    assert response.status_code == 409
    assert response.json()["detail"] == NOT_REFRESHABLE


def test_oauth2_start_answers_the_authorize_url_and_state(actors, api_for):  # type: ignore[no-untyped-def]
    service = _service(
        actors.owner_m,
        name="Provider",
        method="oauth2",
        auth_params={
            "client_id": "app",
            "client_secret": CLIENT_SECRET,
            "authorize_url": "https://provider.example/authorize",
            "token_url": "https://provider.example/token",
            "scopes": ["read"],
        },
    )
    call = api_for(actors.owner_m)
    response = call(
        "POST",
        "/authentications/oauth2/start",
        {"service": str(service.public_id), "name": "Grant"},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"authorize_url", "state"}
    query = parse_qs(urlsplit(body["authorize_url"]).query)
    assert query["state"] == [body["state"]]
    assert query["redirect_uri"][0].endswith("/oauth2/callback")
    assert OAuthFlow.objects.filter(user=actors.owner, name="Grant").count() == 1
    # Values cannot be posted for OAuth2: the grant comes from the provider.
    posted = call("POST", "/authentications", {"service": str(service.public_id), "name": "G"})
    assert posted.status_code == 422
    assert posted.json()["errors"] == {"__all__": [USE_CONNECT]}


def test_oauth2_start_for_a_token_service_is_422(actors, api_for, token_service):  # type: ignore[no-untyped-def]
    response = api_for(actors.owner_m)(
        "POST",
        "/authentications/oauth2/start",
        {"service": str(token_service.public_id), "name": "G"},
    )
    assert response.status_code == 422
    assert not OAuthFlow.objects.exists()


def test_without_an_api_key_it_is_401(client):  # type: ignore[no-untyped-def]
    assert client.get(API + "/authentications").status_code == 401
