"""What editing a service does to the authentications using it: moving the base URL to another
host needs a confirmation, and a parameter made secret moves its stored values into the
encrypted secrets (and never shows them again)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from services import services as svc
from services.authentications import authentication_create
from services.models import Authentication, Service
from services.service_changes import ORIGIN_CHANGE_NEEDS_CONFIRMATION
from workspaces.models import AuditEvent
from workspaces.services import api_key_create

pytestmark = pytest.mark.django_db

SUBDOMAIN = "acme-plain-value"
TENANT_KEY = "tenant-key-SECRET-77"  # noqa: S105 - a test value


def _update(service: Service, actor: Any, **over: Any) -> Service:
    """service_update with the service's current definition, some fields replaced."""
    fields = {
        "name": service.name, "description": service.description, "base_url": service.base_url,
        "auth_method": service.auth_method, "auth_params": dict(service.auth_params),
        "extra_params": service.extra_params, "test_request": service.test_request or None,
        "default_headers": service.default_headers,
    }  # fmt: skip
    fields.update(over)
    return svc.service_update(service=service, actor=actor, **fields)


def _api(membership: Any) -> Client:
    _key, full = api_key_create(membership=membership)
    return Client(headers={"Authorization": f"Bearer {full}"})


@pytest.fixture
def shared_service(actors):  # type: ignore[no-untyped-def]
    """The owner's token service, with an authentication of the member and one of the admin."""
    service = svc.service_create(
        membership=actors.owner_m, name="Shared API", base_url="https://api.example.com/v1",
        auth_method="token", auth_params={"placement": "bearer"},
    )  # fmt: skip
    for membership, name in ((actors.member_m, "Member's"), (actors.admin_m, "Admin's")):
        authentication_create(
            membership=membership, workspace=membership.personal_workspace, service=service,
            name=name, values={"token": f"tok-{name}"},
        )  # fmt: skip
    return service


# ---- the base URL's host ----------------------------------------------------------------------


def test_moving_the_host_under_other_peoples_authentications_needs_a_confirmation(
    actors, shared_service
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as info:
        _update(shared_service, actors.owner_m, base_url="https://collector.example.net/v1")
    assert info.value.message_dict == {
        "confirm_origin_change": [
            ORIGIN_CHANGE_NEEDS_CONFIRMATION.format(
                old="https://api.example.com",
                new="https://collector.example.net",
                count=2,
                people=2,
            )  # fmt: skip
        ]
    }
    shared_service.refresh_from_db()
    assert shared_service.base_url == "https://api.example.com/v1"
    assert not AuditEvent.objects.filter(action="service.origin_change").exists()
    # confirmed: saved, and the move is audited with what it affected
    svc.service_update(
        service=shared_service, actor=actors.owner_m, name="Shared API",
        base_url="https://collector.example.net/v1", auth_method="token",
        auth_params={"placement": "bearer"}, confirm_origin_change=True,
    )  # fmt: skip
    shared_service.refresh_from_db()
    assert shared_service.base_url == "https://collector.example.net/v1"
    event = AuditEvent.objects.get(action="service.origin_change")
    assert event.actor == actors.owner and event.target_id == str(shared_service.public_id)
    assert event.details == {"from": "https://api.example.com",
                             "to": "https://collector.example.net",
                             "authentications": 2, "people": 2}  # fmt: skip


@pytest.mark.parametrize(
    "new_url",
    ["https://api.example.com/v2", "https://API.example.com:443/v1", "https://api.example.com"],
)
def test_same_host_new_path_needs_no_confirmation(actors, shared_service, new_url) -> None:  # type: ignore[no-untyped-def]
    _update(shared_service, actors.owner_m, base_url=new_url)
    shared_service.refresh_from_db()
    assert shared_service.base_url == new_url.rstrip("/")
    assert not AuditEvent.objects.filter(action="service.origin_change").exists()


@pytest.mark.parametrize(
    "new_url", ["http://api.example.com/v1", "https://api.example.com:8443/v1"]
)
def test_another_scheme_or_port_is_another_host(actors, shared_service, new_url) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as info:
        _update(shared_service, actors.owner_m, base_url=new_url)
    assert "confirm_origin_change" in info.value.message_dict


def test_only_ones_own_authentications_need_no_confirmation(actors) -> None:  # type: ignore[no-untyped-def]
    service = svc.service_create(
        membership=actors.member_m, name="Mine", base_url="https://api.example.com",
        auth_method="token", auth_params={"placement": "bearer"},
    )  # fmt: skip
    authentication_create(
        membership=actors.member_m, workspace=actors.member_m.personal_workspace,
        service=service, name="Mine", values={"token": "t"},
    )  # fmt: skip
    _update(service, actors.member_m, base_url="https://other.example.org")
    service.refresh_from_db()
    assert service.base_url == "https://other.example.org"
    event = AuditEvent.objects.get(action="service.origin_change")
    assert event.details["authentications"] == 0


def test_a_preexisting_service_counts_the_connectors_authentications(actors) -> None:  # type: ignore[no-untyped-def]
    service = svc.service_create(
        membership=actors.owner_m, name="Stripe here", base_url="https://api.stripe.com/v1",
        auth_method="preexisting", auth_params={"connector": "stripe"},
    )  # fmt: skip
    authentication_create(
        membership=actors.member_m, workspace=actors.member_m.personal_workspace,
        connector="stripe", name="Member's Stripe", values={"token": "sk_test_1"},
    )  # fmt: skip
    with pytest.raises(ValidationError) as info:
        _update(service, actors.owner_m, base_url="https://stripe-proxy.example.net")
    assert info.value.message_dict["confirm_origin_change"] == [
        ORIGIN_CHANGE_NEEDS_CONFIRMATION.format(
            old="https://api.stripe.com",
            new="https://stripe-proxy.example.net",
            count=1,
            people=1,
        )  # fmt: skip
    ]


def test_api_patch_of_the_host_needs_confirm_origin_change(actors, shared_service) -> None:  # type: ignore[no-untyped-def]
    client = _api(actors.owner_m)
    url = f"/api/v1/services/{shared_service.public_id}"
    refused = client.patch(url, {"base_url": "https://collector.example.net"},
                           content_type="application/json")  # fmt: skip
    assert refused.status_code == 422, refused.content
    message = ORIGIN_CHANGE_NEEDS_CONFIRMATION.format(
        old="https://api.example.com", new="https://collector.example.net", count=2, people=2
    )
    assert refused.json()["errors"] == {"confirm_origin_change": [message]}
    assert Service.objects.get(pk=shared_service.pk).base_url == "https://api.example.com/v1"
    confirmed = client.patch(
        url, json.dumps({"base_url": "https://collector.example.net", "confirm_origin_change": True}),
        content_type="application/json",
    )  # fmt: skip
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["base_url"] == "https://collector.example.net"
    assert AuditEvent.objects.filter(action="service.origin_change").count() == 1


def test_the_edit_form_asks_to_confirm_the_new_host(actors, client_for, shared_service) -> None:  # type: ignore[no-untyped-def]
    client = client_for(actors.owner)
    url = f"/o/{actors.org_a.slug}/services/{shared_service.public_id}/edit/"
    data: dict[str, Any] = {
        "name": "Shared API", "base_url": "https://collector.example.net", "auth_method": "token",
        "auth-placement": "bearer", "test_method": "GET", "test_path": "",
    }  # fmt: skip
    refused = client.post(url, data)
    assert refused.status_code == 400
    page = refused.content.decode()
    assert 'name="confirm_origin_change"' in page
    assert "2 authentication(s) of 2 other person(s)" in page
    assert Service.objects.get(pk=shared_service.pk).base_url == "https://api.example.com/v1"
    saved = client.post(url, {**data, "confirm_origin_change": "on"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert Service.objects.get(pk=shared_service.pk).base_url == "https://collector.example.net"
    # an ordinary edit page does not show the checkbox
    assert 'name="confirm_origin_change"' not in client.get(url).content.decode()


# ---- a parameter made secret ------------------------------------------------------------------


@pytest.fixture
def param_service(actors):  # type: ignore[no-untyped-def]
    """A service with two non-secret extra params, and an authentication holding values."""
    service = svc.service_create(
        membership=actors.owner_m, name="Params", base_url="https://{{auth.subdomain}}.example.com",
        auth_method="token", auth_params={"placement": "bearer"},
        extra_params=[{"key": "subdomain", "label": "Subdomain", "required": True},
                      {"key": "tenant_key", "label": "Tenant key"}],
    )  # fmt: skip
    authentication_create(
        membership=actors.member_m, workspace=actors.member_m.personal_workspace,
        service=service, name="Member's",
        values={"token": "tok-1", "subdomain": SUBDOMAIN, "tenant_key": TENANT_KEY},
    )  # fmt: skip
    return service


def _params(secret_tenant: bool) -> list[dict[str, Any]]:
    return [{"key": "subdomain", "label": "Subdomain", "required": True},
            {"key": "tenant_key", "label": "Tenant key", "secret": secret_tenant}]  # fmt: skip


def test_a_param_made_secret_moves_its_values_into_the_encrypted_secrets(
    actors, param_service
) -> None:  # type: ignore[no-untyped-def]
    auth = Authentication.objects.get()
    assert auth.values == {"subdomain": SUBDOMAIN, "tenant_key": TENANT_KEY}
    _update(param_service, actors.owner_m, extra_params=_params(secret_tenant=True))
    auth.refresh_from_db()
    assert auth.values == {"subdomain": SUBDOMAIN}
    assert auth.get_secrets() == {"token": "tok-1", "tenant_key": TENANT_KEY}
    assert TENANT_KEY not in auth.secrets  # ciphertext, not the value
    event = AuditEvent.objects.filter(action="service.update").latest("pk")
    assert event.details["values_moved"] == {
        "to_secrets": ["tenant_key"], "to_values": [], "authentications": 1,
    }  # fmt: skip
    assert TENANT_KEY not in json.dumps(event.details)
    # and back when it stops being secret
    _update(param_service, actors.owner_m, extra_params=_params(secret_tenant=False))
    auth.refresh_from_db()
    assert auth.values == {"subdomain": SUBDOMAIN, "tenant_key": TENANT_KEY}
    assert auth.get_secrets() == {"token": "tok-1"}


def test_the_api_and_pages_show_only_the_current_definitions_public_values(
    actors, client_for, param_service
) -> None:  # type: ignore[no-untyped-def]
    auth = Authentication.objects.get()
    client = _api(actors.member_m)
    detail = client.get(f"/api/v1/authentications/{auth.public_id}").json()
    assert detail["values"] == {"subdomain": SUBDOMAIN, "tenant_key": TENANT_KEY}
    # a plaintext value left behind (e.g. written before this fix) is not shown once secret
    Service.objects.filter(pk=param_service.pk).update(extra_params=_params(secret_tenant=True))
    detail = client.get(f"/api/v1/authentications/{auth.public_id}")
    assert detail.json()["values"] == {"subdomain": SUBDOMAIN}
    assert TENANT_KEY not in detail.content.decode()
    browser = client_for(actors.member)
    page = browser.get(auth.get_absolute_url()).content.decode()
    assert SUBDOMAIN in page and TENANT_KEY not in page
    edit = browser.get(auth.get_absolute_url() + "edit/").content.decode()
    assert TENANT_KEY not in edit
