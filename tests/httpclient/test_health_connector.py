"""Health checks of connector authentications go to the connector's catalog URL, never to a
service a member defined (which could point anywhere and would receive the token)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from httpclient.health import check_authentication, service_to_check_with
from httpclient.models import CallLog
from services.authentications import authentication_create
from services.services import service_create
from traysvc.egress import close_clients, set_resolver

pytestmark = pytest.mark.django_db

VICTIM_TOKEN = "sk_live_VICTIM-connector-token-5f4e3d"  # noqa: S105 - a test value


class NoDNS:
    """Records every name the egress guard resolves; only localhost (pytest-httpserver)
    resolves: there is no internet here."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.names.append(host)
        if host == "localhost":
            return ["127.0.0.1"]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.fixture
def dns(settings: Any) -> Iterator[NoDNS]:
    settings.HTTPCLIENT_ALLOW_NETWORKS = ["127.0.0.0/8"]  # the attacker's server is reachable
    fake = NoDNS()
    previous = set_resolver(fake)
    yield fake
    set_resolver(previous)
    close_clients()


@pytest.fixture
def attacker_service(actors, httpserver):  # type: ignore[no-untyped-def]
    """A plain member's pre-existing service for the Stripe connector, pointing at their own
    server: created first, so it is the oldest of the organization."""
    httpserver.expect_request("/steal/balance").respond_with_json({"ok": True})
    return service_create(
        membership=actors.member_m,
        name="My Stripe",
        base_url=httpserver.url_for("/steal"),
        auth_method="preexisting",
        auth_params={"connector": "stripe"},
        test_request={"method": "GET", "path": "/balance"},
    )


@pytest.fixture
def victim_auth(actors, attacker_service):  # type: ignore[no-untyped-def]
    """The owner's own Stripe key, an authentication of the connector (no service)."""
    return authentication_create(
        membership=actors.owner_m,
        workspace=actors.owner_m.personal_workspace,
        connector="stripe",
        name="Owner's Stripe key",
        values={"token": VICTIM_TOKEN},
    )


def test_scheduled_check_of_a_connector_authentication_never_reaches_a_members_server(
    victim_auth, attacker_service, httpserver, dns
) -> None:  # type: ignore[no-untyped-def]
    outcome = check_authentication(authentication=victim_auth)
    assert httpserver.log == []  # the attacker received nothing, token or otherwise
    assert dns.names == ["api.stripe.com"]  # the catalog's base URL was the destination
    assert outcome.result is not None and not outcome.ok
    assert outcome.result.url.startswith("https://api.stripe.com/v1/balance")
    log = CallLog.objects.get()
    assert log.url.startswith("https://api.stripe.com/v1/balance")
    assert log.service_id is None and log.authentication_id == victim_auth.pk
    assert VICTIM_TOKEN not in log.url


def test_the_test_button_on_a_connector_authentication_uses_the_catalog_too(
    actors, client_for, victim_auth, attacker_service, httpserver, dns
) -> None:  # type: ignore[no-untyped-def]
    url = f"/o/{actors.org_a.slug}/authentications/{victim_auth.public_id}/test/"
    response = client_for(actors.owner).post(url)
    assert response.status_code == 302
    assert httpserver.log == []
    assert dns.names == ["api.stripe.com"]


def test_connector_stand_in_is_the_catalog_definition_and_is_never_saved(
    victim_auth, attacker_service
) -> None:  # type: ignore[no-untyped-def]
    service = service_to_check_with(victim_auth)
    assert service is not None and service.pk is None
    assert service.base_url == "https://api.stripe.com/v1"
    assert service.test_request == {"method": "GET", "path": "/balance"}
    assert service.auth_params == {"connector": "stripe"}


def test_an_authentication_of_a_service_is_checked_with_that_service(
    actors, httpserver, dns
) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request(
        "/api/me", headers={"Authorization": "Bearer tok-own"}
    ).respond_with_json({"me": 1})
    service = service_create(
        membership=actors.owner_m,
        name="Own API",
        base_url=httpserver.url_for("/api"),
        auth_method="token",
        auth_params={"placement": "bearer"},
        test_request={"method": "GET", "path": "/me"},
    )
    auth = authentication_create(
        membership=actors.owner_m,
        workspace=actors.owner_m.personal_workspace,
        service=service,
        name="Own",
        values={"token": "tok-own"},
    )
    assert service_to_check_with(auth) == service
    outcome = check_authentication(authentication=auth)
    assert outcome.ok and outcome.result is not None and outcome.result.status == 200
    assert len(httpserver.log) == 1
