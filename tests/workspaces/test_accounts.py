"""Accounts: signup creates an organization with a personal workspace; API keys; commands."""

from __future__ import annotations

import html
import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from workspaces.models import ApiKey, Membership, Organization, Workspace
from workspaces.services import api_key_authenticate

pytestmark = pytest.mark.django_db


def test_signup_verify_and_personal_workspace(client, mailoutbox) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        "/accounts/signup/",
        {
            "email": "fresh@example.com",
            "password1": "pass phrase long 77",
            "password2": "pass phrase long 77",
        },
    )
    assert response.status_code == 302
    # Email verification is mandatory: not signed in until confirmed.
    assert client.get("/").status_code == 302
    link = re.search(r"http://testserver(/accounts/confirm-email/\S+)", mailoutbox[0].body).group(1)
    assert client.post(link).status_code == 302
    m = Membership.objects.get(user__email="fresh@example.com")
    assert m.role == "owner"
    assert Workspace.objects.get(owner=m).kind == "personal"
    home = client.get("/", follow=True)
    assert home.status_code == 200
    assert html.escape(m.organization.name) in home.content.decode()


def test_login_page_and_password_reset(client, mailoutbox) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import make_user

    make_user("reset@example.com")
    assert client.get("/accounts/login/").status_code == 200
    client.post("/accounts/password/reset/", {"email": "reset@example.com"})
    assert len(mailoutbox) == 1 and "password" in mailoutbox[0].body.lower()


def test_mfa_page_available(client_for) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import make_user

    response = client_for(make_user("mfa@example.com")).get("/accounts/2fa/")
    assert response.status_code == 200
    assert "Authenticator" in response.content.decode()


def test_createorg_command_prints_slug_and_login_works(client) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    call_command(
        "createorg",
        "--name",
        "Cmd Org",
        "--owner",
        "cmd@example.com",
        "--password",
        "a fine password 1",
        stdout=out,
    )
    slug = out.getvalue().strip()
    assert slug == "cmd-org"
    assert Organization.objects.filter(slug=slug).exists()
    response = client.post(
        "/accounts/login/", {"login": "cmd@example.com", "password": "a fine password 1"}
    )
    assert response.status_code == 302
    assert client.get(f"/o/{slug}/").status_code == 200


def test_createorg_rejects_bad_email_and_duplicate_slug() -> None:
    with pytest.raises(CommandError, match="not a valid email"):
        call_command("createorg", "--name", "X", "--owner", "nope")
    call_command("createorg", "--name", "Dup", "--owner", "d@example.com", stdout=io.StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("createorg", "--name", "Dup", "--owner", "d@example.com", "--slug", "dup")


def test_createapikey_prints_a_working_key_stored_hashed(actors) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    call_command("createapikey", "--email", "member@a.example", "--org", "org-a", stdout=out)
    key = out.getvalue().strip()
    assert key.startswith("tsk_")
    row = ApiKey.objects.get()
    assert key not in (row.key_hash, row.prefix)
    assert api_key_authenticate(key).membership == actors.member_m
    assert api_key_authenticate(key + "x") is None
    with pytest.raises(CommandError):
        call_command("createapikey", "--email", "member@a.example", "--org", "org-b")


def test_api_key_page_shows_key_once_and_revokes(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    c = client_for(actors.member)
    created = c.post("/settings/api-keys/", {"organization": "org-a", "name": "ci"})
    body = created.content.decode()
    full = re.search(r"tsk_[0-9a-f]{12}_[A-Za-z0-9_-]+", body).group(0)
    assert api_key_authenticate(full) is not None
    assert full not in c.get("/settings/api-keys/").content.decode()
    key = ApiKey.objects.get()
    assert c.post(f"/settings/api-keys/{key.public_id}/revoke/").status_code == 302
    assert api_key_authenticate(full) is None
    # Someone else's key is not reachable.
    assert (
        client_for(actors.outsider).post(f"/settings/api-keys/{key.public_id}/revoke/").status_code
        == 404
    )


def test_api_key_for_org_i_am_not_in_is_refused(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    response = client_for(actors.member).post(
        "/settings/api-keys/", {"organization": "org-b", "name": "x"}
    )
    assert "not a member" in response.content.decode()
    assert ApiKey.objects.count() == 0


def test_healthz_reports_db_and_broker(client) -> None:  # type: ignore[no-untyped-def]
    data = client.get("/healthz").json()
    assert data["ok"] is True
    assert data["db"]["ok"] is True
    assert "broker" in data


def test_api_key_cache_expires_and_revocation_is_immediate_here(actors, settings) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from workspaces.services import api_key_create, api_key_revoke

    settings.API_KEY_CACHE_SECONDS = 60
    key, full = api_key_create(membership=actors.member_m)
    assert api_key_authenticate(full).pk == key.pk
    with CaptureQueriesContext(connection) as queries:
        assert api_key_authenticate(full).pk == key.pk
    assert len(queries) == 0  # served from the in-process cache
    api_key_revoke(key=key, actor=actors.member)
    assert api_key_authenticate(full) is None
    # With the cache off every call reads the database.
    settings.API_KEY_CACHE_SECONDS = 0
    key2, full2 = api_key_create(membership=actors.member_m)
    api_key_authenticate(full2)
    ApiKey.objects.filter(pk=key2.pk).update(revoked_at=key.revoked_at)
    assert api_key_authenticate(full2) is None


def test_healthz_is_503_when_the_broker_folder_is_missing(client, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        pytest.skip("the filesystem broker is only used without REDIS_URL")
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "data_folder_in": str(tmp_path / "gone"),
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] == {"ok": False, "kind": "filesystem", "ready": False}
