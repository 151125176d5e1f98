""" "Refresh now" is audited as the person who pressed it; the sweep as traysvc itself."""

from __future__ import annotations

import pytest
from django.test import Client

from services.refresh import REASON_SWEEP, authentication_refresh
from workspaces.models import AuditEvent
from workspaces.services import api_key_create

from .conftest import token_body


def _refresh_rows(grant):  # type: ignore[no-untyped-def]
    return AuditEvent.objects.filter(
        action="authentication.refresh", target_id=str(grant.public_id)
    ).order_by("pk")


@pytest.fixture
def tokens(httpserver):  # type: ignore[no-untyped-def]
    httpserver.expect_request("/token", method="POST").respond_with_json(token_body())


def test_refresh_now_on_the_page_is_audited_as_the_user(
    actors, client_for, local_grant, tokens
) -> None:  # type: ignore[no-untyped-def]
    grant = local_grant()
    url = f"/o/{actors.org_a.slug}/authentications/{grant.public_id}/refresh/"
    response = client_for(actors.owner).post(url)
    assert response.status_code == 302
    [row] = _refresh_rows(grant)
    assert row.actor == actors.owner
    assert row.details == {"reason": "manual", "rotated": True}


def test_refresh_through_the_api_is_audited_as_the_keys_member(actors, local_grant, tokens) -> None:  # type: ignore[no-untyped-def]
    grant = local_grant()
    _key, full = api_key_create(membership=actors.owner_m)
    client = Client(headers={"Authorization": f"Bearer {full}"})
    response = client.post(f"/api/v1/authentications/{grant.public_id}/refresh")
    assert response.status_code == 200, response.content
    [row] = _refresh_rows(grant)
    assert row.actor == actors.owner


def test_the_sweeps_refresh_has_no_actor(local_grant, tokens) -> None:  # type: ignore[no-untyped-def]
    grant = local_grant()
    authentication_refresh(authentication_id=grant.pk, reason=REASON_SWEEP)
    [row] = _refresh_rows(grant)
    assert row.actor is None and row.details["reason"] == REASON_SWEEP
