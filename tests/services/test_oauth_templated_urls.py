"""OAuth URLs with templates (Zendesk's {{auth.subdomain}}, Microsoft's {{auth.tenant}}): the
values entered before "Connect" fill them at start, at the token exchange, at every refresh
and at revocation, and they become the authentication's values.

The host cannot be templated to a loopback name here, so a path segment is:
http://127.0.0.1:PORT/{{auth.tenant}}/token.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from services import services as svc
from services.auth_methods.base import FIELD_REQUIRED
from services.authentications import VALUE_ENTER_AFTER_CONNECT, authentication_delete
from services.models import Authentication, OAuthFlow
from services.oauth import oauth_flow_finish, oauth_flow_start
from services.refresh import authentication_refresh
from workspaces.services import api_key_create

from .conftest import token_body

pytestmark = pytest.mark.django_db

PARAMS = [
    {"key": "tenant", "label": "Tenant", "required": True, "pattern": "^[a-z0-9./-]+$"},
    {"key": "region", "label": "Region", "default": "eu"},
    {"key": "signing_key", "label": "Signing key", "secret": True},
]


@pytest.fixture
def tenant_service(actors, httpserver, loopback):  # type: ignore[no-untyped-def]
    root = f"http://127.0.0.1:{httpserver.port}"
    return svc.service_create(
        membership=actors.owner_m, name="Tenanted",
        base_url=root + "/{{auth.tenant}}/api", auth_method="oauth2",
        auth_params={
            "client_id": "tenant-app", "client_secret": "tenant-app-secret",
            "authorize_url": root + "/{{auth.tenant}}/authorize",
            "token_url": root + "/{{auth.tenant}}/{{auth.region}}/token",
            "revoke_url": root + "/{{auth.tenant}}/revoke",
            "scopes": ["read"], "pkce": True,
        },
        extra_params=PARAMS,
    )  # fmt: skip


def _start(actors: Any, service: Any, values: dict[str, Any] | None, name: str = "T") -> Any:
    return oauth_flow_start(
        membership=actors.owner_m, workspace=actors.owner_m.personal_workspace,
        service=service, name=name, values=values,
    )  # fmt: skip


def test_values_fill_the_urls_at_start_finish_refresh_and_revoke(
    actors, tenant_service, httpserver
) -> None:  # type: ignore[no-untyped-def]
    url, state = _start(actors, tenant_service, {"tenant": "contoso"})
    assert url.startswith(f"http://127.0.0.1:{httpserver.port}/contoso/authorize?")
    flow = OAuthFlow.objects.get()
    assert flow.values == {"tenant": "contoso", "region": "eu"}
    assert flow.issuer == f"http://127.0.0.1:{httpserver.port}"
    httpserver.expect_oneshot_request("/contoso/eu/token", method="POST").respond_with_json(
        token_body(access="at-1", refresh="rt-1")
    )
    authentication = oauth_flow_finish(user=actors.owner, state=state, code="the-code")
    assert authentication.values == {"tenant": "contoso", "region": "eu"}
    assert authentication.get_secrets()["access_token"] == "at-1"
    # the refresh reads the authentication's values
    httpserver.expect_oneshot_request(
        "/contoso/eu/token", method="POST", data="grant_type=refresh_token&refresh_token=rt-1"
    ).respond_with_json(token_body(access="at-2", refresh="rt-2"))
    refreshed = authentication_refresh(authentication_id=authentication.pk, reason="manual")
    assert refreshed.get_secrets()["access_token"] == "at-2"
    # and so does the revocation when it is deleted
    httpserver.expect_oneshot_request("/contoso/revoke", method="POST").respond_with_data("")
    authentication_delete(authentication=refreshed, actor=actors.owner_m)
    assert not Authentication.objects.exists()
    httpserver.check_assertions()
    assert [entry[0].path for entry in httpserver.log] == [
        "/contoso/eu/token", "/contoso/eu/token", "/contoso/revoke",
    ]  # fmt: skip


def test_a_reconnect_uses_the_authentications_own_values(
    actors, tenant_service, httpserver
) -> None:  # type: ignore[no-untyped-def]
    _url, state = _start(actors, tenant_service, {"tenant": "fabrikam", "region": "us"})
    httpserver.expect_oneshot_request("/fabrikam/us/token").respond_with_json(token_body())
    authentication = oauth_flow_finish(user=actors.owner, state=state, code="c")
    again, _state = oauth_flow_start(
        membership=actors.owner_m, workspace=actors.owner_m.personal_workspace,
        name="ignored", authentication=authentication, values={"tenant": "other"},
    )  # fmt: skip
    assert f"127.0.0.1:{httpserver.port}/fabrikam/authorize?" in again


def test_values_are_validated_before_the_browser_leaves(actors, tenant_service) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as info:
        _start(actors, tenant_service, {})
    assert info.value.message_dict == {"tenant": [FIELD_REQUIRED]}
    with pytest.raises(ValidationError) as info:
        _start(actors, tenant_service, {"tenant": "contoso", "signing_key": "sk-SECRET"})
    assert info.value.message_dict == {"signing_key": [VALUE_ENTER_AFTER_CONNECT]}
    assert not OAuthFlow.objects.exists()


def test_a_value_cannot_leave_its_path_segment(actors, tenant_service, httpserver) -> None:  # type: ignore[no-untyped-def]
    url, _state = _start(actors, tenant_service, {"tenant": "../evil.example/x"})
    assert url.startswith(f"http://127.0.0.1:{httpserver.port}/..%2Fevil.example%2Fx/authorize?")


def test_the_api_start_takes_values(actors, tenant_service, httpserver) -> None:  # type: ignore[no-untyped-def]
    _key, full = api_key_create(membership=actors.owner_m)
    client = Client(headers={"Authorization": f"Bearer {full}"})
    response = client.post(
        "/api/v1/authentications/oauth2/start",
        json.dumps({"service": str(tenant_service.public_id), "name": "API grant",
                    "values": {"tenant": "northwind"}}),
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert urlsplit(response.json()["authorize_url"]).path == "/northwind/authorize"
    missing = client.post(
        "/api/v1/authentications/oauth2/start",
        json.dumps({"service": str(tenant_service.public_id), "name": "API grant 2"}),
        content_type="application/json",
    )
    assert missing.status_code == 422
    assert missing.json()["errors"] == {"tenant": [FIELD_REQUIRED]}


def test_the_connect_form_asks_for_the_values_before_connect(
    actors, client_for, tenant_service, httpserver
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(actors.owner)
    common = {
        "target": f"service:{tenant_service.public_id}", "name": "Form grant",
        "workspace": str(actors.owner_m.personal_workspace.public_id),
    }  # fmt: skip
    page = client.get(f"/o/{actors.org_a.slug}/authentications/new/", {**common, "step": "v"})
    body = page.content.decode()
    assert page.status_code == 200
    assert 'name="value_tenant"' in body and 'name="value_region"' in body
    assert 'name="value_signing_key"' not in body  # secret: entered after connecting
    start = client.post(f"/o/{actors.org_a.slug}/authentications/connect/",
                        {**common, "value_tenant": "adatum"})  # fmt: skip
    assert start.status_code == 302
    location = urlsplit(start["Location"])
    assert location.path == "/adatum/authorize"
    state = parse_qs(location.query)["state"][0]
    httpserver.expect_oneshot_request("/adatum/eu/token").respond_with_json(token_body())
    done = client.get("/oauth2/callback", {"state": state, "code": "c"})
    assert done.status_code == 302
    assert Authentication.objects.get(name="Form grant").values == {
        "tenant": "adatum", "region": "eu",
    }  # fmt: skip


def test_client_credentials_with_a_templated_token_url(actors, httpserver, loopback) -> None:  # type: ignore[no-untyped-def]
    service = svc.service_create(
        membership=actors.owner_m, name="Machine", base_url="https://api.example.com",
        auth_method="oauth2",
        auth_params={"client_id": "m", "client_secret": "m-secret",
                     "grant_type": "client_credentials",
                     "token_url": f"http://127.0.0.1:{httpserver.port}/{{{{auth.tenant}}}}/token"},
        extra_params=PARAMS[:1],
    )  # fmt: skip
    httpserver.expect_oneshot_request("/woodgrove/token").respond_with_json(token_body())
    _key, full = api_key_create(membership=actors.owner_m)
    client = Client(headers={"Authorization": f"Bearer {full}"})
    response = client.post(
        "/api/v1/authentications",
        json.dumps({"service": str(service.public_id), "name": "CC",
                    "values": {"tenant": "woodgrove"}}),
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    assert Authentication.objects.get().values == {"tenant": "woodgrove"}
    assert response.json()["values"] == {"tenant": "woodgrove"}
