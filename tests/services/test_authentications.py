"""authentication_create / update / delete and authentications_usable_by."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from services import authentications as auths
from services.authentications import (
    authentication_create,
    authentication_delete,
    authentication_update,
    authentications_usable_by,
)
from services.models import Authentication, AuthStatus, Service
from workspaces.models import AuditEvent
from workspaces.services import workspace_create_shared

TOKEN = "tok-SECRET-123"  # noqa: S105 - a test value
EXTRAS = [
    {"key": "tenant", "label": "Tenant", "required": True, "pattern": "^[a-z]+$"},
    {"key": "region", "label": "Region", "default": "eu"},
    {"key": "signing_key", "label": "Signing key", "secret": True},
]


@pytest.fixture
def service(actors):  # type: ignore[no-untyped-def]
    return Service.objects.create(
        organization=actors.org_a,
        owner_workspace=actors.owner_m.personal_workspace,
        name="Tok",
        slug="tok",
        base_url="https://{{auth.tenant}}.api.example",
        auth_method="token",
        auth_params={"placement": "bearer"},
        extra_params=EXTRAS,
    )


def _create(actors, service, **values):  # type: ignore[no-untyped-def]
    return authentication_create(
        membership=actors.owner_m,
        workspace=actors.owner_m.personal_workspace,
        service=service,
        name=values.pop("name", "Prod"),
        values={"token": TOKEN, "tenant": "acme", **values},
    )


def test_create_encrypts_secrets_and_keeps_plain_values(actors, service):  # type: ignore[no-untyped-def]
    authentication = _create(actors, service, signing_key="sk-SECRET")
    assert authentication.get_secrets() == {"token": TOKEN, "signing_key": "sk-SECRET"}
    assert TOKEN not in authentication.secrets
    assert authentication.values == {"tenant": "acme", "region": "eu"}
    assert authentication.status == AuthStatus.ACTIVE
    event = AuditEvent.objects.get(action="authentication.create")
    assert TOKEN not in str(event.details) and event.actor == actors.owner


def test_create_validates_credentials_and_extra_params(actors, service):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as info:
        authentication_create(
            membership=actors.owner_m,
            workspace=actors.owner_m.personal_workspace,
            service=service,
            name="Bad",
            values={"tenant": "ACME!", "nope": "x"},
        )
    errors = info.value.message_dict
    assert errors["token"] == ["This field is required."]
    assert errors["tenant"] == [auths.VALUE_PATTERN.format(pattern="^[a-z]+$")]
    assert errors["nope"] == [auths.VALUE_UNKNOWN]
    assert not Authentication.objects.exists()


def test_name_must_be_unique_per_workspace(actors, service):  # type: ignore[no-untyped-def]
    _create(actors, service)
    with pytest.raises(ValidationError) as info:
        _create(actors, service)
    assert info.value.message_dict["name"] == [auths.NAME_TAKEN.format(name="Prod")]


def test_only_own_or_joined_workspaces(actors, service):  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDenied):
        authentication_create(
            membership=actors.member_m,
            workspace=actors.owner_m.personal_workspace,
            service=service,
            name="X",
            values={"token": TOKEN, "tenant": "acme"},
        )
    shared = workspace_create_shared(organization=actors.org_a, name="Team", actor=actors.owner_m)
    with pytest.raises(PermissionDenied):
        authentication_create(
            membership=actors.member_m, workspace=shared, service=service, name="X",
            values={"token": TOKEN, "tenant": "acme"},
        )  # fmt: skip
    in_shared = authentication_create(
        membership=actors.owner_m, workspace=shared, service=service, name="Team token",
        values={"token": TOKEN, "tenant": "acme"},
    )  # fmt: skip
    assert in_shared.workspace == shared
    with pytest.raises(PermissionDenied):  # a service of another organization
        authentication_create(
            membership=actors.outsider_m,
            workspace=actors.outsider_m.personal_workspace,
            service=service,
            name="X",
            values={"token": TOKEN, "tenant": "acme"},
        )


def test_oauth2_is_connected_not_created(actors, local_service):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as info:
        authentication_create(
            membership=actors.owner_m,
            workspace=actors.owner_m.personal_workspace,
            service=local_service,
            name="X",
            values={},
        )
    assert info.value.messages == [auths.USE_CONNECT]


def test_update_blank_secret_keeps_it_and_a_new_one_replaces(actors, service):  # type: ignore[no-untyped-def]
    authentication = _create(actors, service, signing_key="sk-1")
    kept = authentication_update(
        authentication=authentication,
        actor=actors.owner_m,
        name="Renamed",
        values={"token": "", "tenant": "other", "signing_key": ""},
    )
    assert kept.name == "Renamed" and kept.values["tenant"] == "other"
    assert kept.get_secrets() == {"token": TOKEN, "signing_key": "sk-1"}
    assert AuditEvent.objects.filter(action="authentication.update").exists()
    Authentication.objects.filter(pk=kept.pk).update(status=AuthStatus.REVOKED)
    kept.refresh_from_db()
    replaced = authentication_update(
        authentication=kept, actor=actors.owner, values={"token": "new-SECRET", "tenant": "other"}
    )
    assert replaced.get_secrets()["token"] == "new-SECRET"
    assert replaced.status == AuthStatus.ACTIVE
    event = AuditEvent.objects.get(action="authentication.replace")
    assert event.details["replaced"] == ["token"] and "new-SECRET" not in str(event.details)


def test_delete_audits_and_revokes_an_oauth_grant_at_the_provider(
    actors, service, local_grant, local_service, httpserver
):  # type: ignore[no-untyped-def]
    plain = _create(actors, service)
    authentication_delete(authentication=plain, actor=actors.owner_m)
    assert not Authentication.objects.filter(pk=plain.pk).exists()
    assert AuditEvent.objects.filter(action="authentication.delete").count() == 1
    local_service.auth_params = {**local_service.auth_params,
                                 "revoke_url": httpserver.url_for("/revoke")}  # fmt: skip
    local_service.save()
    httpserver.expect_request("/revoke", method="POST").respond_with_data("")
    grant = local_grant()
    authentication_delete(authentication=grant, actor=actors.owner)
    sent = httpserver.log[0][0]
    assert sent.form["token"] == "old-rt" and sent.form["token_type_hint"] == "refresh_token"
    assert not Authentication.objects.filter(pk=grant.pk).exists()


def test_preexisting_service_uses_its_connectors_authentications(actors, service):  # type: ignore[no-untyped-def]
    pre = Service.objects.create(
        organization=actors.org_a, owner_workspace=actors.owner_m.personal_workspace,
        name="My Stripe", slug="my-stripe", base_url="https://api.stripe.com/v1",
        auth_method="preexisting", auth_params={"connector": "stripe"},
    )  # fmt: skip
    made = authentication_create(
        membership=actors.owner_m, workspace=actors.owner_m.personal_workspace, service=pre,
        name="Stripe key", values={"token": "sk_test_1"},
    )  # fmt: skip
    assert made.service is None and made.connector == "stripe"
    own = _create(actors, service)
    usable = list(authentications_usable_by(membership=actors.owner_m, service=pre))
    assert usable == [made]
    assert list(authentications_usable_by(membership=actors.owner_m, service=service)) == [own]
    assert set(authentications_usable_by(membership=actors.owner_m)) == {made, own}


def test_usable_by_is_scoped_to_the_members_workspaces(actors, service):  # type: ignore[no-untyped-def]
    _create(actors, service)
    assert not authentications_usable_by(membership=actors.member_m).exists()
    assert not authentications_usable_by(membership=actors.outsider_m).exists()
    assert not authentications_usable_by(membership=actors.admin_m).exists()  # admins too
