"""sandbox_setup / ensure_sandbox_apps: the provider's clients, idempotently."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from oauth2_provider.models import Application

from sandbox.clients import CC_CLIENT_ID, WEB_CLIENT_ID, ensure_sandbox_apps
from sandbox.models import SandboxClientSecret

pytestmark = pytest.mark.django_db


def test_creates_two_confidential_clients_with_hashed_secrets(settings) -> None:
    apps = ensure_sandbox_apps()
    web = Application.objects.get(client_id=WEB_CLIENT_ID)
    cc = Application.objects.get(client_id=CC_CLIENT_ID)
    assert web.authorization_grant_type == Application.GRANT_AUTHORIZATION_CODE
    assert cc.authorization_grant_type == Application.GRANT_CLIENT_CREDENTIALS
    assert {web.client_type, cc.client_type} == {Application.CLIENT_CONFIDENTIAL}
    assert web.redirect_uris == settings.TRAYSVC_PUBLIC_URL + "/oauth2/callback"
    assert web.algorithm == ""
    assert web.hash_client_secret and web.client_secret != apps.client_secret
    # The plain secret is kept only encrypted.
    record = SandboxClientSecret.objects.get(client_id=WEB_CLIENT_ID)
    assert apps.client_secret not in record.secret
    assert record.get_secret() == apps.client_secret


def test_urls_are_on_the_public_url(settings) -> None:
    settings.TRAYSVC_PUBLIC_URL = "http://127.0.0.1:8123"
    apps = ensure_sandbox_apps()
    assert apps.authorize_url == "http://127.0.0.1:8123/sandbox/o/authorize/"
    assert apps.token_url == "http://127.0.0.1:8123/sandbox/o/token/"
    assert apps.revoke_url == "http://127.0.0.1:8123/sandbox/o/revoke_token/"
    assert apps.api_base == "http://127.0.0.1:8123/sandbox/api"
    assert apps.redirect_uri == "http://127.0.0.1:8123/oauth2/callback"
    assert Application.objects.get(client_id=WEB_CLIENT_ID).redirect_uris == apps.redirect_uri


def test_second_run_returns_the_same_credentials() -> None:
    first = ensure_sandbox_apps()
    hashes = dict(Application.objects.values_list("client_id", "client_secret"))
    second = ensure_sandbox_apps()
    assert second == first
    assert dict(Application.objects.values_list("client_id", "client_secret")) == hashes
    assert Application.objects.count() == 2
    assert SandboxClientSecret.objects.count() == 2


def test_the_returned_secret_works_at_the_token_endpoint(provider) -> None:  # type: ignore[no-untyped-def]
    again = ensure_sandbox_apps()
    assert provider.client_credentials()["access_token"]
    assert again.cc_client_secret == provider.apps.cc_client_secret


def test_rotate_issues_new_secrets_and_the_old_ones_stop_working(provider) -> None:  # type: ignore[no-untyped-def]
    old = provider.apps
    new = ensure_sandbox_apps(rotate=True)
    assert new.client_secret != old.client_secret
    assert new.cc_client_secret != old.cc_client_secret
    stale = provider.token({"grant_type": "client_credentials"}, client_id=old.cc_client_id,
                           client_secret=old.cc_client_secret)  # fmt: skip
    assert stale.status_code == 401
    fresh = provider.token({"grant_type": "client_credentials"}, client_id=new.cc_client_id,
                           client_secret=new.cc_client_secret)  # fmt: skip
    assert fresh.status_code == 200


def test_a_secret_reset_elsewhere_is_replaced() -> None:
    first = ensure_sandbox_apps()
    web = Application.objects.get(client_id=WEB_CLIENT_ID)
    web.client_secret = "reset-in-the-admin"
    web.save()
    second = ensure_sandbox_apps()
    assert second.client_secret not in (first.client_secret, "reset-in-the-admin")
    assert second.cc_client_secret == first.cc_client_secret


def test_an_undecryptable_secret_is_replaced() -> None:
    first = ensure_sandbox_apps()
    SandboxClientSecret.objects.filter(client_id=CC_CLIENT_ID).update(secret="v1.nokey.AAAA")
    second = ensure_sandbox_apps()
    assert second.cc_client_secret != first.cc_client_secret
    assert second.client_secret == first.client_secret


def test_sandbox_user_password_is_generated_once(settings) -> None:
    first = ensure_sandbox_apps()
    assert (settings.VAR_DIR / "sandbox_user_password").read_text().strip() == first.user_password
    assert ensure_sandbox_apps().user_password == first.user_password


def test_command_prints_credentials_and_is_idempotent() -> None:
    out1, out2 = StringIO(), StringIO()
    call_command("sandbox_setup", stdout=out1)
    call_command("sandbox_setup", stdout=out2)
    assert out1.getvalue() == out2.getvalue()
    lines = dict(line.split(": ", 1) for line in out1.getvalue().splitlines())
    assert lines["client_id"] == WEB_CLIENT_ID
    assert lines["cc_client_id"] == CC_CLIENT_ID
    assert lines["client_secret"] == ensure_sandbox_apps().client_secret
    assert lines["user"].startswith("sandbox-user@example.com / ")
    assert Application.objects.count() == 2


def test_command_rotate_changes_the_printed_secrets() -> None:
    before, after = StringIO(), StringIO()
    call_command("sandbox_setup", stdout=before)
    call_command("sandbox_setup", "--rotate", stdout=after)
    secret = [line for line in before.getvalue().splitlines() if line.startswith("client_secret")]
    assert secret and secret[0] not in after.getvalue()
