"""rotate_encryption_keys: every secret re-encrypted under the new key, readable without the old."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from services.management.commands.rotate_encryption_keys import DONE, SOME_FAILED
from services.models import Authentication, AuthStatus, OAuthFlow, Service
from traysvc import crypto

OLD = crypto.generate_key()
NEW = crypto.generate_key()


@pytest.fixture
def secrets_under_old_key(actors, settings):  # type: ignore[no-untyped-def]
    """A service secret, an authentication's secrets and a flow's verifier, all under OLD."""
    settings.TRAYSVC_ENCRYPTION_KEYS = [OLD]
    workspace = actors.owner_m.personal_workspace
    service = Service(
        organization=actors.org_a,
        owner_workspace=workspace,
        name="S",
        slug="s",
        base_url="https://api.example",
        auth_method="oauth2",
        auth_params={"client_id": "c", "token_url": "https://api.example/t"},
    )
    service.set_secret_params({"client_secret": "client-secret-1"})
    service.save()
    authentication = Authentication(
        organization=actors.org_a,
        workspace=workspace,
        service=service,
        name="A",
        status=AuthStatus.ACTIVE,
    )
    authentication.set_secrets({"access_token": "at-1", "refresh_token": "rt-1"})
    authentication.save()
    flow = OAuthFlow(
        organization=actors.org_a,
        state_hash="h" * 64,
        service=service,
        workspace=workspace,
        user=actors.owner,
        name="F",
        redirect_uri="https://x/cb",
        expires_at=timezone.now() + timedelta(minutes=10),
    )
    flow.code_verifier = crypto.encrypt("verifier-1", aad=flow.verifier_aad)
    flow.save()
    return service, authentication, flow


def _read_all(service, authentication, flow):  # type: ignore[no-untyped-def]
    service.refresh_from_db()
    authentication.refresh_from_db()
    flow.refresh_from_db()
    return (
        service.get_secret_params(),
        authentication.get_secrets(),
        crypto.decrypt(flow.code_verifier, aad=flow.verifier_aad).decode(),
    )


def _rotate() -> str:
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    return out.getvalue()


def test_rotation_reencrypts_everything_and_survives_dropping_the_old_key(
    secrets_under_old_key, settings
):  # type: ignore[no-untyped-def]
    expected = (
        {"client_secret": "client-secret-1"},
        {"access_token": "at-1", "refresh_token": "rt-1"},
        "verifier-1",
    )
    settings.TRAYSVC_ENCRYPTION_KEYS = [NEW, OLD]
    assert _read_all(*secrets_under_old_key) == expected  # old key still decrypts
    output = _rotate()
    assert output.strip() == DONE.format(count=3, current=0)
    new_kid = crypto.key_id(crypto.base64.urlsafe_b64decode(NEW))
    service, authentication, flow = secrets_under_old_key
    for token in _tokens(service, authentication, flow):
        assert crypto.key_id_of(token) == new_kid
    settings.TRAYSVC_ENCRYPTION_KEYS = [NEW]
    assert _read_all(*secrets_under_old_key) == expected
    assert _rotate().strip() == DONE.format(count=0, current=3)


def _tokens(service, authentication, flow):  # type: ignore[no-untyped-def]
    service.refresh_from_db()
    authentication.refresh_from_db()
    flow.refresh_from_db()
    return [service.secret_params, authentication.secrets, flow.code_verifier]


def test_without_the_old_key_nothing_decrypts_so_rotation_is_needed(
    secrets_under_old_key, settings
):  # type: ignore[no-untyped-def]
    settings.TRAYSVC_ENCRYPTION_KEYS = [NEW]
    _, authentication, _ = secrets_under_old_key
    authentication.refresh_from_db()
    with pytest.raises(crypto.UnknownKeyError):
        authentication.get_secrets()


def test_a_ciphertext_moved_to_another_row_is_reported_not_rewritten(
    actors, secrets_under_old_key, settings
):  # type: ignore[no-untyped-def]
    service, authentication, _ = secrets_under_old_key
    other = Authentication(
        organization=actors.org_a,
        workspace=authentication.workspace,
        service=service,
        name="B",
        secrets=authentication.secrets,
    )
    other.save()
    settings.TRAYSVC_ENCRYPTION_KEYS = [NEW, OLD]
    err = StringIO()
    with pytest.raises(CommandError) as info:
        call_command("rotate_encryption_keys", stdout=StringIO(), stderr=err)
    assert str(info.value) == SOME_FAILED.format(failed=1)
    assert "belongs to another record" in err.getvalue()
    assert "at-1" not in err.getvalue()
    authentication.refresh_from_db()
    assert authentication.get_secrets()["access_token"] == "at-1"
