"""Ownership: admins transfer services; a member who owns services cannot be removed until then."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from services import services as svc
from services.guards import OWNS_SERVICES
from services.models import Authentication, Service
from workspaces.models import AuditEvent, Membership
from workspaces.services import membership_remove, organization_set_service_owner

pytestmark = pytest.mark.django_db


def make(membership: Any, name: str) -> Service:
    return svc.service_create(membership=membership, name=name, auth_method="none",
                              base_url="https://api.example.com")  # fmt: skip


def owns(membership: Any) -> list[str]:
    return sorted(
        Service.objects.filter(owner_workspace__owner=membership).values_list("name", flat=True)
    )


def test_admin_transfers_a_service_to_another_member(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    service = make(actors.member_m, "Stripe")
    Authentication.objects.create(organization=actors.org_a, service=service, name="live",
                                  workspace=actors.member_m.personal_workspace)  # fmt: skip
    url = f"/o/org-a/services/{service.public_id}/transfer/"
    admin = client_for(actors.admin)
    page = admin.get(url).content.decode()
    assert str(actors.owner_m.public_id) in page and str(actors.member_m.public_id) not in page
    response = admin.post(url, {"to": str(actors.owner_m.public_id)})
    assert response.status_code == 302
    assert owns(actors.owner_m) == ["Stripe"] and owns(actors.member_m) == []
    assert Authentication.objects.get().service_id == service.pk  # nothing broken on the way
    event = AuditEvent.objects.get(action="service.transfer")
    assert event.details == {"name": "Stripe", "from": "member@a.example", "to": "owner@a.example"}


def test_members_cannot_transfer_and_outsiders_see_nothing(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    service = make(actors.member_m, "Stripe")
    url = f"/o/org-a/services/{service.public_id}/transfer/"
    to_self = {"to": str(actors.member_m.public_id)}
    assert client_for(actors.member).post(url, {"to": str(actors.admin_m.public_id)}).status_code \
        == 403  # fmt: skip
    assert client_for(actors.outsider).post(url, to_self).status_code == 404
    outsider_target = {"to": str(actors.outsider_m.public_id)}
    assert client_for(actors.admin).post(url, outsider_target).status_code == 400  # not a choice
    assert owns(actors.member_m) == ["Stripe"]


def test_transfer_to_another_org_member_is_refused_by_the_service(actors) -> None:  # type: ignore[no-untyped-def]
    service = make(actors.member_m, "Stripe")
    with pytest.raises(ValidationError) as info:
        svc.service_transfer(service=service, to=actors.outsider_m, actor=actors.admin_m)
    assert info.value.message_dict == {"to": [svc.TRANSFER_OTHER_ORG]}
    with pytest.raises(ValidationError):
        svc.service_transfer(service=service, to=actors.member_m, actor=actors.admin_m)
    assert owns(actors.member_m) == ["Stripe"]


def test_the_designated_service_owner_is_offered_first(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    organization_set_service_owner(organization=actors.org_a, membership=actors.admin_m,
                                   actor=actors.owner_m)  # fmt: skip
    service = make(actors.member_m, "Stripe")
    page = client_for(actors.owner).get(f"/o/org-a/services/{service.public_id}/transfer/")
    body = page.content.decode()
    body = body[body.index('<select name="to"') :]
    assert body.index("admin@a.example (service owner)") < body.index("owner@a.example")


def test_removing_a_member_who_owns_services_is_refused_with_a_link(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    make(actors.member_m, "Stripe")
    make(actors.member_m, "Slack")
    transfer_url = f"/o/org-a/services/transfer/{actors.member_m.public_id}/"
    expected = OWNS_SERVICES.format(email="member@a.example", count=2, noun="services",
                                    them="them", url=transfer_url)  # fmt: skip
    with pytest.raises(ValidationError) as info:
        membership_remove(membership=actors.member_m, actor=actors.owner_m)
    assert info.value.messages == [expected]
    admin = client_for(actors.owner)
    response = admin.post(f"/o/org-a/members/{actors.member_m.public_id}/remove/", follow=True)
    assert expected in response.content.decode()
    assert Membership.objects.filter(pk=actors.member_m.pk).exists()
    assert owns(actors.member_m) == ["Slack", "Stripe"]


def test_transferring_everything_then_removing_the_member(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    organization_set_service_owner(organization=actors.org_a, membership=actors.admin_m,
                                   actor=actors.owner_m)  # fmt: skip
    make(actors.member_m, "Stripe")
    make(actors.member_m, "Slack")
    client = client_for(actors.owner)
    page = client.get(f"/o/org-a/services/transfer/{actors.member_m.public_id}/")
    assert "these 2 services" in page.content.decode()
    assert client_for(actors.member).get(
        f"/o/org-a/services/transfer/{actors.member_m.public_id}/").status_code == 403  # fmt: skip
    response = client.post(f"/o/org-a/services/transfer/{actors.member_m.public_id}/",
                           {"to": str(actors.admin_m.public_id)})  # fmt: skip
    assert response.status_code == 302
    assert owns(actors.admin_m) == ["Slack", "Stripe"]
    membership_remove(membership=actors.member_m, actor=actors.owner_m)
    assert not Membership.objects.filter(pk=actors.member_m.pk).exists()
    assert Service.objects.count() == 2  # nothing orphaned or silently deleted


def test_a_member_without_services_is_removed_normally(actors) -> None:  # type: ignore[no-untyped-def]
    make(actors.admin_m, "Stripe")
    membership_remove(membership=actors.member_m, actor=actors.owner_m)
    assert not Membership.objects.filter(pk=actors.member_m.pk).exists()
