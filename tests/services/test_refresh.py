"""authentication_refresh: rotation at the real provider, revocation found by the health check,
and every outcome class (permanent, temporary, expired, expiring) on loopback endpoints."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from httpclient.health import check_authentication
from services import refresh
from services.auth_methods.oauth2 import client_basic_header
from services.models import Authentication, AuthStatus, GrantLifetime
from services.oauth import grant_revoke
from services.refresh import RefreshError, authentication_refresh
from services.status import service_grant_flag
from traysvc import egress
from workspaces.models import Notification

from .conftest import token_body


def _refresh_at_provider(provider, refresh_token):  # type: ignore[no-untyped-def]
    """Use a refresh token directly at the provider (what an attacker with an old one would)."""
    return egress.send(
        "POST",
        provider.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers={"Authorization": client_basic_header(provider.client_id, provider.client_secret)},
        allow_origins=refresh_egress_origins(provider.token_url),
    )


def refresh_egress_origins(url):  # type: ignore[no-untyped-def]
    from services.oauth import egress_allow_origins

    return egress_allow_origins(url)


def test_refresh_rotates_and_the_old_refresh_token_is_refused(connect, provider):  # type: ignore[no-untyped-def]
    authentication = connect()
    before = authentication.get_secrets()
    refreshed = authentication_refresh(authentication_id=authentication.pk, reason="manual")
    after = refreshed.get_secrets()
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]
    assert refreshed.refresh_count == 1 and refreshed.last_refreshed_at is not None
    assert refreshed.pk == authentication.pk and refreshed.status == AuthStatus.ACTIVE
    old = _refresh_at_provider(provider, before["refresh_token"])
    assert old.status_code == 400 and json.loads(old.content)["error"] == "invalid_grant"
    again = authentication_refresh(authentication_id=authentication.pk, reason="manual")
    assert again.get_secrets()["refresh_token"] not in (before["refresh_token"],
                                                        after["refresh_token"])  # fmt: skip
    assert again.refresh_count == 2


def test_revoked_at_the_provider_is_found_by_the_health_check(connect, provider):  # type: ignore[no-untyped-def]
    authentication = connect()
    assert check_authentication(authentication=authentication).ok
    assert grant_revoke(authentication=authentication) is True  # RFC 7009 at the sandbox
    outcome = check_authentication(authentication=authentication)
    assert not outcome.ok and outcome.result.status == 401
    authentication.refresh_from_db()
    assert authentication.status == AuthStatus.NEEDS_REAUTH
    assert authentication.last_error == refresh.GRANT_DEAD.format(
        error="invalid_grant", description=""
    )
    assert "Reconnect" in authentication.last_error
    assert GrantLifetime.objects.filter(authentication=authentication).count() == 1
    assert Notification.objects.filter(title__contains="Needs reconnecting").exists()
    # Reconnect repairs the same row.
    again = connect(authentication=authentication)
    assert again.pk == authentication.pk and again.status == AuthStatus.ACTIVE
    assert check_authentication(authentication=again).ok


def test_token_authentication_revoked_is_found_by_the_health_check(actors, connect, provider):  # type: ignore[no-untyped-def]
    """A non-OAuth service holding a pasted token: a 401 from the test request is 'revoked'."""
    from services.authentications import authentication_create
    from services.models import Service
    from services.status import CHECK_REVOKED

    grant = connect()
    service = Service.objects.create(
        organization=actors.org_a, owner_workspace=actors.owner_m.personal_workspace,
        name="Pasted", slug="pasted", base_url=provider.api_base, auth_method="token",
        auth_params={"placement": "bearer"}, test_request={"method": "GET", "path": "/me"},
    )  # fmt: skip
    pasted = authentication_create(
        membership=actors.owner_m, workspace=actors.owner_m.personal_workspace,
        service=service, name="Pasted token",
        values={"token": grant.get_secrets()["access_token"]},
    )  # fmt: skip
    assert check_authentication(authentication=pasted).ok
    grant_revoke(authentication=grant)
    check_authentication(authentication=pasted)
    pasted.refresh_from_db()
    assert pasted.status == AuthStatus.REVOKED
    assert pasted.last_error == CHECK_REVOKED.format(status=401)


def test_answer_without_refresh_token_keeps_the_stored_one(local_grant, httpserver):  # type: ignore[no-untyped-def]
    httpserver.expect_request("/token", method="POST").respond_with_json(
        token_body(access="new-at", refresh=None, expires_in="7200", scope="read write")
    )
    authentication = local_grant()
    done = authentication_refresh(authentication_id=authentication.pk, reason="sweep")
    assert done.get_secrets() == {"access_token": "new-at", "refresh_token": "old-rt"}
    assert done.scopes == ["read", "write"]
    assert timedelta(seconds=7100) < done.expires_at - timezone.now() <= timedelta(seconds=7200)
    sent = httpserver.log[0][0]
    assert sent.form["refresh_token"] == "old-rt" and sent.form["grant_type"] == "refresh_token"


def test_form_encoded_rotation_is_stored(local_grant, httpserver):  # type: ignore[no-untyped-def]
    httpserver.expect_request("/token").respond_with_data(
        "access_token=f-at&refresh_token=f-rt&token_type=BEARER&expires_in=60",
        content_type="application/x-www-form-urlencoded",
    )
    done = authentication_refresh(authentication_id=local_grant().pk, reason="sweep")
    assert done.get_secrets()["refresh_token"] == "f-rt" and done.token_type == "bearer"


def test_invalid_grant_needs_reauth_and_records_the_lifetime(local_grant, httpserver):  # type: ignore[no-untyped-def]
    httpserver.expect_request("/token").respond_with_json(
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
        status=400,
    )
    authentication = local_grant()
    with pytest.raises(RefreshError) as info:
        authentication_refresh(authentication_id=authentication.pk, reason="sweep")
    assert not info.value.temporary
    authentication.refresh_from_db()
    assert authentication.status == AuthStatus.NEEDS_REAUTH
    assert authentication.last_error == refresh.GRANT_DEAD.format(
        error="invalid_grant", description=": Token has been expired or revoked."
    )
    lifetime = GrantLifetime.objects.get()
    assert 3 * 3600 - 5 <= lifetime.seconds <= 3 * 3600 + 5
    # a second death of this service's grants: the service page explains why
    with pytest.raises(RefreshError):
        authentication_refresh(authentication_id=local_grant().pk, reason="sweep")
    assert service_grant_flag(authentication.service) == (
        "Grants for this service keep dying after about 3 hours. The provider may have this "
        "app in test / unverified status: publish or verify the app at the provider."
    )


@pytest.mark.parametrize("status", [400, 401, 403])
def test_other_4xx_are_permanent(local_grant, httpserver, status):  # type: ignore[no-untyped-def]
    httpserver.expect_request("/token").respond_with_json(
        {"error": "invalid_client"}, status=status
    )
    authentication = local_grant()
    with pytest.raises(RefreshError):
        authentication_refresh(authentication_id=authentication.pk, reason="sweep")
    authentication.refresh_from_db()
    assert authentication.status == AuthStatus.NEEDS_REAUTH
    # A refused client is the service's to fix, not a dead grant: no lifetime is recorded.
    assert authentication.last_error.startswith("The provider refused the service's client")
    assert not GrantLifetime.objects.filter(authentication=authentication).exists()


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (503, '{"error": "temporarily_unavailable"}', "application/json"),
        (500, "oops", "text/plain"),
        (429, '{"error": "slow_down"}', "application/json"),
        (408, "", "text/plain"),
        (409, '{"error": "conflict"}', "application/json"),
        (425, "", "text/plain"),
        (200, "<html>maintenance</html>", "text/html"),
    ],
)
def test_temporary_failures_back_off(local_grant, httpserver, status, body, content_type):  # type: ignore[no-untyped-def]
    httpserver.expect_request("/token").respond_with_data(
        body, status=status, content_type=content_type
    )
    authentication = local_grant()
    with pytest.raises(RefreshError) as info:
        authentication_refresh(authentication_id=authentication.pk, reason="sweep")
    assert info.value.temporary
    authentication.refresh_from_db()
    assert authentication.status == AuthStatus.REFRESH_FAILED
    assert authentication.failure_count == 1
    wait = authentication.next_retry_at - timezone.now()
    assert timedelta(seconds=10) < wait <= timedelta(seconds=31)
    assert "retries automatically" in authentication.last_error
    assert authentication.get_secrets()["refresh_token"] == "old-rt"


def test_backoff_grows_and_is_capped() -> None:
    waits = [refresh.backoff(n).total_seconds() for n in range(1, 12)]
    assert 15 <= waits[0] <= 30 and 30 <= waits[1] <= 60
    assert all(w <= 3600 for w in waits) and waits[-1] >= 1800


def test_timeout_is_temporary_and_recovery_notifies(local_grant, httpserver, settings):  # type: ignore[no-untyped-def]
    settings.AUTH_TOKEN_TIMEOUT_SECONDS = 1
    release = threading.Event()

    def hang(request):  # type: ignore[no-untyped-def]
        release.wait(5)
        from werkzeug import Response

        return Response("{}", content_type="application/json")

    httpserver.expect_ordered_request("/token").respond_with_handler(hang)
    httpserver.expect_ordered_request("/token").respond_with_json(token_body(access="back"))
    authentication = local_grant()
    try:
        with pytest.raises(RefreshError) as info:
            authentication_refresh(authentication_id=authentication.pk, reason="sweep")
    finally:
        release.set()
    assert info.value.code == "egress_timeout"
    assert refresh.TEMP_TIMEOUT in info.value.message
    authentication.refresh_from_db()
    assert authentication.status == AuthStatus.REFRESH_FAILED
    done = authentication_refresh(authentication_id=authentication.pk, reason="manual")
    assert done.status == AuthStatus.ACTIVE and done.failure_count == 0
    assert done.next_retry_at is None and done.last_error == ""
    titles = list(Notification.objects.values_list("title", flat=True))
    assert any("Refresh failed" in t for t in titles)
    assert any("is working again" in t for t in titles)


def test_expiry_passed_without_refresh_token_is_expired(local_grant, httpserver):  # type: ignore[no-untyped-def]
    authentication = local_grant(refresh=None, expires_in=-5)
    with pytest.raises(RefreshError) as info:
        authentication_refresh(authentication_id=authentication.pk, reason="sweep")
    assert info.value.message == refresh.EXPIRED_NO_REFRESH
    authentication.refresh_from_db()
    assert authentication.status == AuthStatus.EXPIRED
    assert httpserver.log == []


def test_refresh_token_expiry_passed_is_expired(local_grant, httpserver):  # type: ignore[no-untyped-def]
    authentication = local_grant(refresh_expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(RefreshError):
        authentication_refresh(authentication_id=authentication.pk, reason="sweep")
    authentication.refresh_from_db()
    assert authentication.status == AuthStatus.EXPIRED and httpserver.log == []


def test_refresh_token_expiring_soon_warns(local_grant, httpserver, settings):  # type: ignore[no-untyped-def]
    body = token_body(access="a2", refresh="r2", refresh_token_expires_in=3 * 86400)
    httpserver.expect_request("/token").respond_with_json(body)
    done = authentication_refresh(authentication_id=local_grant().pk, reason="sweep")
    assert done.status == AuthStatus.EXPIRING
    assert "Reconnect before" in done.last_error
    settings.AUTH_REFRESH_TOKEN_WARN_DAYS = 2
    again = authentication_refresh(authentication_id=done.pk, reason="manual")
    assert again.status == AuthStatus.ACTIVE


def test_not_due_is_not_refreshed_and_a_stale_token_is_not_refreshed_twice(local_grant, httpserver):  # type: ignore[no-untyped-def]
    httpserver.expect_request("/token").respond_with_json(token_body(access="fresh"))
    far = local_grant(expires_in=3600)
    assert authentication_refresh(authentication_id=far.pk, reason="sweep").secrets == far.secrets
    due = local_grant()
    first = authentication_refresh(authentication_id=due.pk, reason=refresh.REASON_CALL,
                                   expected_token="old-at")  # fmt: skip
    second = authentication_refresh(authentication_id=due.pk, reason=refresh.REASON_CALL,
                                    expected_token="old-at")  # fmt: skip
    assert first.get_secrets()["access_token"] == second.get_secrets()["access_token"] == "fresh"
    assert len(httpserver.log) == 1


def test_invalid_grant_for_an_already_rotated_token_is_success(local_grant, httpserver):  # type: ignore[no-untyped-def]
    """The re-read branch: the stored grant no longer holds the token that was refused."""
    httpserver.expect_request("/token").respond_with_json({"error": "invalid_grant"}, status=400)
    authentication = local_grant()
    rotated = Authentication.objects.get(pk=authentication.pk)
    rotated.set_secrets({"access_token": "other-at", "refresh_token": "other-rt"})
    rotated.save()
    from services.auth_methods.oauth2 import TokenError

    outcome = refresh._failed(
        authentication, timezone.now(),
        TokenError("invalid_grant", "", permanent=True, status=400), sent_refresh="old-rt",
    )  # fmt: skip
    assert isinstance(outcome, Authentication)
    assert outcome.get_secrets()["refresh_token"] == "other-rt"
    rotated.refresh_from_db()
    assert rotated.status == AuthStatus.ACTIVE and not GrantLifetime.objects.exists()


def test_not_oauth_is_not_refreshable(actors, local_service, httpserver):  # type: ignore[no-untyped-def]
    from services.authentications import authentication_create
    from services.models import Service

    service = Service.objects.create(
        organization=actors.org_a, owner_workspace=actors.owner_m.personal_workspace,
        name="Tok", slug="tok", base_url="https://api.example", auth_method="token",
        auth_params={"placement": "bearer"},
    )  # fmt: skip
    pasted = authentication_create(
        membership=actors.owner_m, workspace=actors.owner_m.personal_workspace,
        service=service, name="T", values={"token": "abc"},
    )  # fmt: skip
    with pytest.raises(RefreshError) as info:
        authentication_refresh(authentication_id=pasted.pk, reason="manual")
    assert info.value.message == refresh.NOT_REFRESHABLE
