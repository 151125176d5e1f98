"""OAuth2 for a catalog connector: the client registration comes from the organization's
service made from the catalog; the provider's endpoints always from the catalog itself."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from services import services as svc
from services.authentications import connector_target
from services.catalog import get_connector
from services.grants import CONNECTOR_NEEDS_CLIENT, oauth_client_for
from services.models import Authentication, AuthStatus, OAuthFlow, Source
from services.refresh import RefreshError, authentication_refresh
from traysvc.egress import close_clients, set_resolver
from workspaces.services import api_key_create

pytestmark = pytest.mark.django_db

GITHUB_SECRET = "github-app-SECRET-4e5f"  # noqa: S105 - a test value


def _api(membership: Any) -> Client:
    _key, full = api_key_create(membership=membership)
    return Client(headers={"Authorization": f"Bearer {full}"})


def _start(client: Client, body: dict[str, Any]) -> Any:
    return client.post("/api/v1/authentications/oauth2/start", json.dumps(body),
                       content_type="application/json")  # fmt: skip


def _github_service(membership: Any, **auth_over: Any) -> Any:
    """A service made from the GitHub catalog template, as the new-service page saves it."""
    connector = get_connector("github")
    assert connector is not None
    return svc.service_create(
        membership=membership, name="GitHub", base_url=connector.base_url,
        auth_method="oauth2",
        auth_params={**connector.auth_params, "client_id": "gh-app-id",
                     "client_secret": GITHUB_SECRET, **auth_over},
        default_headers=dict(connector.default_headers),
        test_request=connector.test_request.model_dump(),
        source=Source.CATALOG, source_detail="github",
    )  # fmt: skip


def test_starting_a_connector_grant_uses_the_catalog_services_client(actors) -> None:  # type: ignore[no-untyped-def]
    _github_service(actors.owner_m)
    response = _start(_api(actors.member_m), {"connector": "github", "name": "My GitHub"})
    assert response.status_code == 200, response.content
    url = response.json()["authorize_url"]
    assert url.startswith("https://github.com/login/oauth/authorize?")
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == ["gh-app-id"]
    assert query["scope"] == ["read:user user:email"]
    flow = OAuthFlow.objects.get()
    assert flow.connector == "github" and flow.service_id is None and flow.user == actors.member


def test_without_a_catalog_service_the_connector_needs_a_client(actors) -> None:  # type: ignore[no-untyped-def]
    response = _start(_api(actors.member_m), {"connector": "github", "name": "My GitHub"})
    assert response.status_code == 422
    assert response.json()["errors"] == {"__all__": [CONNECTOR_NEEDS_CLIENT.format(name="github")]}


def test_a_custom_service_with_the_same_name_is_not_a_connectors_client(actors) -> None:  # type: ignore[no-untyped-def]
    service = _github_service(actors.owner_m)
    service.source, service.source_detail = Source.CUSTOM, ""
    service.save()
    response = _start(_api(actors.member_m), {"connector": "github", "name": "My GitHub"})
    assert response.status_code == 422


def test_edited_endpoints_of_the_catalog_service_are_not_used_for_connector_grants(
    actors, httpserver
) -> None:  # type: ignore[no-untyped-def]
    _github_service(
        actors.member_m,
        authorize_url=httpserver.url_for("/authorize"),
        token_url=httpserver.url_for("/token"),
        revoke_url=httpserver.url_for("/revoke"),
    )
    client = oauth_client_for(connector_target(organization=actors.org_a, key="github"))
    catalog = get_connector("github").auth_params  # type: ignore[union-attr]
    assert client.params.authorize_url == catalog["authorize_url"]
    assert client.params.token_url == catalog["token_url"]
    assert client.params.revoke_url is None  # the catalog has none
    assert client.params.client_id == "gh-app-id" and client.client_secret == GITHUB_SECRET


@pytest.fixture
def no_dns(settings: Any) -> Iterator[list[str]]:
    settings.HTTPCLIENT_ALLOW_NETWORKS = ["127.0.0.0/8"]
    names: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        names.append(host)
        if host == "localhost":
            return ["127.0.0.1"]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    previous = set_resolver(resolve)
    yield names
    set_resolver(previous)
    close_clients()


def test_refreshing_a_connector_grant_never_sends_its_token_to_an_edited_token_url(
    actors, httpserver, no_dns
) -> None:  # type: ignore[no-untyped-def]
    _github_service(actors.member_m, token_url=httpserver.url_for("/token"))
    grant = Authentication(
        organization=actors.org_a, workspace=actors.owner_m.personal_workspace,
        connector="github", name="Owner's GitHub", status=AuthStatus.ACTIVE,
        created_by=actors.owner,
    )  # fmt: skip
    grant.set_secrets({"access_token": "gho_owner", "refresh_token": "ghr_owner_SECRET"})
    grant.save()
    with pytest.raises(RefreshError) as info:
        authentication_refresh(authentication_id=grant.pk, reason="manual")
    assert info.value.temporary  # github.com does not resolve here: retried later
    assert httpserver.log == []
    assert no_dns == ["github.com"]
