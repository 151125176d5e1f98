"""Status transitions and their notifications, health-check verdicts, the short-grant flag."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from services import status as st
from services.models import Authentication, AuthStatus, GrantLifetime
from services.status import (
    authentication_mark_used,
    authentication_report_check,
    authentication_transition,
    explain_status,
    service_grant_flag,
)
from workspaces.models import AuditEvent, Notification


@pytest.fixture
def token_auth(actors):  # type: ignore[no-untyped-def]
    """A token authentication created by org A's plain member."""
    from services.authentications import authentication_create
    from services.models import Service

    service = Service.objects.create(
        organization=actors.org_a, owner_workspace=actors.owner_m.personal_workspace,
        name="Tok", slug="tok", base_url="https://api.example", auth_method="token",
        auth_params={"placement": "bearer"}, test_request={"method": "GET", "path": "/me"},
    )  # fmt: skip
    return authentication_create(
        membership=actors.member_m, workspace=actors.member_m.personal_workspace,
        service=service, name="Member token", values={"token": "s3cr3t-token"},
    )  # fmt: skip


def _commit(django_capture_on_commit_callbacks, fn):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        return fn()


def test_failing_transition_notifies_creator_and_admins(
    actors, token_auth, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    _commit(django_capture_on_commit_callbacks, lambda: authentication_transition(
        authentication=token_auth, status=AuthStatus.REVOKED, error="Refused by provider.",
        code="x",
    ))  # fmt: skip
    notified = set(Notification.objects.values_list("user__email", flat=True))
    assert notified == {"owner@a.example", "admin@a.example", "member@a.example"}
    assert "outsider@b.example" not in notified
    notice = Notification.objects.first()
    assert notice.title == "Member token: Revoked" and notice.level == "error"
    assert "Refused by provider." in notice.body and "Reconnect" in notice.body
    assert notice.link  # the authentication page (or the org's list while unrouted)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(notified)
    assert "s3cr3t-token" not in mail.outbox[0].body
    event = AuditEvent.objects.get(action="authentication.status")
    assert event.details == {"from": "active", "to": "revoked", "code": "x"}


def test_same_status_does_not_notify_again_but_recovery_does(
    token_auth, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    def fail(error):  # type: ignore[no-untyped-def]
        return authentication_transition(
            authentication=token_auth, status=AuthStatus.REFRESH_FAILED, error=error
        )

    _commit(django_capture_on_commit_callbacks, lambda: fail("first"))
    count = Notification.objects.count()
    _commit(django_capture_on_commit_callbacks, lambda: fail("second"))
    assert Notification.objects.count() == count
    token_auth.refresh_from_db()
    assert token_auth.last_error == "second"
    _commit(django_capture_on_commit_callbacks, lambda: authentication_transition(
        authentication=token_auth, status=AuthStatus.ACTIVE))  # fmt: skip
    recovered = Notification.objects.filter(title="Member token is working again")
    assert recovered.count() == count and recovered.first().level == "success"
    assert len(mail.outbox) == 2 * count


def test_rolled_back_transition_sends_no_email(token_auth, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                authentication_transition(authentication=token_auth, status=AuthStatus.REVOKED)
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    assert mail.outbox == []
    assert not Notification.objects.exists()


def test_every_status_is_explained_with_a_fix() -> None:
    for status in AuthStatus.values:
        meaning, fix = explain_status(status)
        assert meaning
        if status not in (AuthStatus.ACTIVE,):
            assert fix
    assert "Reconnect" in explain_status(AuthStatus.NEEDS_REAUTH)[1]


def test_check_401_on_a_token_is_revoked_with_an_explanation(token_auth):  # type: ignore[no-untyped-def]
    authentication_report_check(authentication=token_auth, ok=False, status_code=401, error="")
    token_auth.refresh_from_db()
    assert token_auth.status == AuthStatus.REVOKED
    assert token_auth.last_error == st.CHECK_REVOKED.format(status=401)
    assert "Reconnect" in token_auth.last_error and token_auth.last_checked_at is not None
    # a later passing check clears a failure that a check diagnosed
    authentication_report_check(authentication=token_auth, ok=True, status_code=200, error="")
    token_auth.refresh_from_db()
    assert token_auth.status == AuthStatus.ACTIVE and token_auth.last_error == ""


@pytest.mark.parametrize("code", [500, 404, None])
def test_check_failures_that_say_nothing_about_the_credential_keep_the_status(token_auth, code):  # type: ignore[no-untyped-def]
    checked_before = timezone.now() - timedelta(hours=7)
    Authentication.objects.filter(pk=token_auth.pk).update(
        last_checked_at=checked_before, last_error="An earlier refusal.", last_error_code="x"
    )
    token_auth.refresh_from_db()
    started = timezone.now()
    authentication_report_check(
        authentication=token_auth, ok=False, status_code=code, error="timed out"
    )
    token_auth.refresh_from_db()
    assert token_auth.status == AuthStatus.ACTIVE
    # the check is recorded as done now ...
    assert token_auth.last_checked_at is not None and token_auth.last_checked_at >= started
    # ... but what it saw says nothing about the credential: the last error stays as it was
    assert token_auth.last_error == "An earlier refusal." and token_auth.last_error_code == "x"
    assert "timed out" not in token_auth.last_error
    assert not AuditEvent.objects.filter(action="authentication.status").exists()


def test_check_401_on_an_oauth_grant_needs_reauth(local_grant):  # type: ignore[no-untyped-def]
    grant = local_grant()
    authentication_report_check(authentication=grant, ok=False, status_code=403, error="")
    grant.refresh_from_db()
    assert grant.status == AuthStatus.NEEDS_REAUTH
    assert grant.last_error == st.CHECK_NEEDS_REAUTH.format(status=403)


def test_check_keeps_a_refresh_failure_as_it_is(local_grant):  # type: ignore[no-untyped-def]
    grant = local_grant(status=AuthStatus.REFRESH_FAILED, last_error="provider down")
    authentication_report_check(authentication=grant, ok=False, status_code=401, error="")
    grant.refresh_from_db()
    assert grant.status == AuthStatus.REFRESH_FAILED and grant.last_error == "provider down"


def test_grant_flag_needs_two_short_deaths(actors, local_grant):  # type: ignore[no-untyped-def]
    grant = local_grant()
    service = grant.service

    def death(hours):  # type: ignore[no-untyped-def]
        GrantLifetime.objects.create(organization=actors.org_a, service=service,
                                     authentication=grant, seconds=int(hours * 3600))  # fmt: skip

    death(20)
    assert service_grant_flag(service) is None
    death(28)
    assert service_grant_flag(service) == st.GRANT_FLAG.format(hours=24)
    assert "test / unverified status" in service_grant_flag(service)
    death(24 * 30)
    death(24 * 30)
    assert service_grant_flag(service) is None  # the median is now weeks: no flag


def test_learned_lifetime_warns_before_the_grant_dies(actors, local_grant, httpserver):  # type: ignore[no-untyped-def]
    from services.refresh import authentication_refresh

    from .conftest import token_body

    grant = local_grant()
    for _ in range(2):
        GrantLifetime.objects.create(organization=actors.org_a, service=grant.service,
                                     seconds=5 * 86400)  # fmt: skip
    httpserver.expect_request("/token").respond_with_json(token_body(access="n", refresh="m"))
    done = authentication_refresh(authentication_id=grant.pk, reason="sweep")
    assert done.status == AuthStatus.EXPIRING  # started 3 h ago, grants live ~5 days


def test_mark_used_is_throttled_and_audited(actors, token_auth):  # type: ignore[no-untyped-def]
    authentication_mark_used(token_auth, actor=actors.member)
    first = Authentication.objects.get(pk=token_auth.pk).last_used_at
    authentication_mark_used(token_auth, actor=actors.member)
    assert Authentication.objects.get(pk=token_auth.pk).last_used_at == first
    assert AuditEvent.objects.filter(action="authentication.use").count() == 1
    token_auth.last_used_at = timezone.now() - timedelta(minutes=2)
    authentication_mark_used(token_auth)
    assert AuditEvent.objects.filter(action="authentication.use").count() == 2
