"""The Celery side (eager mode): sweep fan-out, duplicate delivery, Redis down, the command,
and signed webhooks received by a real loopback server."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from pytest_httpserver import HTTPServer
from werkzeug import Response

from services import refresh
from services.models import Authentication, AuthStatus
from services.notify import SIGNATURE_HEADER, webhook_secret
from services.refresh import RefreshError, authentication_refresh
from services.status import authentication_transition
from services.tasks import refresh_sweep_task, refresh_task

from .conftest import token_body


@pytest.fixture
def eager(settings, loopback):  # type: ignore[no-untyped-def]
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = False


def _tokens(httpserver):  # type: ignore[no-untyped-def]
    counter = {"n": 0}

    def issue(request):  # type: ignore[no-untyped-def]
        counter["n"] += 1
        body = token_body(access=f"at-{counter['n']}", refresh=f"rt-{counter['n']}")
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/token", method="POST").respond_with_handler(issue)
    return counter


def test_sweep_fans_out_one_task_per_due_grant(
    eager, local_grant, httpserver, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    counter = _tokens(httpserver)
    due = [local_grant() for _ in range(3)]
    later = local_grant(expires_in=3600)
    dead = local_grant(status=AuthStatus.NEEDS_REAUTH)
    waiting = local_grant(status=AuthStatus.REFRESH_FAILED,
                          next_retry_at=timezone.now() + timedelta(minutes=5))  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        assert refresh_sweep_task.delay().get() == 3
    assert counter["n"] == 3
    for authentication in due:
        authentication.refresh_from_db()
        assert authentication.refresh_count == 1
        assert authentication.get_secrets()["access_token"].startswith("at-")
    for untouched in (later, dead, waiting):
        untouched.refresh_from_db()
        assert untouched.refresh_count == 0


def test_a_task_delivered_twice_refreshes_once(eager, local_grant, httpserver):  # type: ignore[no-untyped-def]
    counter = _tokens(httpserver)
    authentication = local_grant()
    refresh_task.delay(authentication.pk)
    refresh_task.delay(authentication.pk)
    assert counter["n"] == 1
    authentication.refresh_from_db()
    assert authentication.refresh_count == 1


def test_task_retries_a_temporary_failure_inside_the_task(eager, local_grant, httpserver):  # type: ignore[no-untyped-def]
    httpserver.expect_ordered_request("/token").respond_with_data("down", status=503)
    httpserver.expect_ordered_request("/token").respond_with_json(token_body(access="ok"))
    authentication = local_grant()
    refresh_task.delay(authentication.pk)  # eager: the retry runs at once, before its backoff
    authentication.refresh_from_db()
    assert authentication.status == AuthStatus.REFRESH_FAILED  # the retry saw "not yet due"
    assert len(httpserver.log) == 1
    authentication.next_retry_at = timezone.now() - timedelta(seconds=1)
    authentication.save()
    refresh_task.delay(authentication.pk)
    authentication.refresh_from_db()
    assert authentication.status == AuthStatus.ACTIVE
    assert authentication.get_secrets()["access_token"] == "ok"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_redis_down_during_a_sweep_is_logged_and_nothing_is_refreshed(
    eager, local_grant, httpserver, settings, caplog, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    counter = _tokens(httpserver)
    authentication = local_grant()
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    with caplog.at_level(logging.WARNING, logger="services.refresh"):
        with django_capture_on_commit_callbacks(execute=True):
            assert refresh_sweep_task() == 0
    assert "Redis is unreachable" in caplog.text
    # a refresh asked for directly refuses too: never without the lock
    with pytest.raises(RefreshError) as info:
        authentication_refresh(authentication_id=authentication.pk, reason="manual")
    assert info.value.message == refresh.LOCK_UNAVAILABLE and info.value.temporary
    assert counter["n"] == 0
    authentication.refresh_from_db()
    assert authentication.status == AuthStatus.ACTIVE and authentication.refresh_count == 0
    # Redis back: the next sweep resumes and nothing was lost
    settings.REDIS_URL = ""
    with django_capture_on_commit_callbacks(execute=True):
        assert refresh_sweep_task() == 1
    assert counter["n"] == 1


@pytest.mark.redis
def test_a_held_redis_lock_fails_the_attempt(eager, local_grant, httpserver, settings):  # type: ignore[no-untyped-def]
    url = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs a real Redis: set TEST_REDIS_URL")
    counter = _tokens(httpserver)
    settings.REDIS_URL = url
    settings.AUTH_REFRESH_LOCK_TIMEOUT_SECONDS = 1
    authentication = local_grant()
    held = refresh.redis_client().lock(f"traysvc:refresh:{authentication.pk}", timeout=30)
    assert held.acquire(blocking=False)
    try:
        with pytest.raises(RefreshError) as info:
            authentication_refresh(authentication_id=authentication.pk, reason="manual")
        assert info.value.message == refresh.LOCK_BUSY
        assert counter["n"] == 0
    finally:
        held.release()
    authentication_refresh(authentication_id=authentication.pk, reason="manual")
    assert counter["n"] == 1


def test_refresh_authentications_command_prints_what_it_refreshed(local_grant, httpserver):  # type: ignore[no-untyped-def]
    _tokens(httpserver)
    authentication = local_grant()
    local_grant(expires_in=3600)
    out = StringIO()
    call_command("refresh_authentications", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines == [
        f"refreshed {authentication.name} ({authentication.public_id})",
        "1 refreshed, 0 failed, 1 due.",
    ]


@pytest.fixture
def receiver(actors):  # type: ignore[no-untyped-def]
    """A webhook receiver on loopback; the org's webhook URL points at it."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    actors.org_a.webhook_url = server.url_for("/hook")
    actors.org_a.save()
    yield server
    server.clear()
    server.stop()


def _verify(request, org) -> bool:  # type: ignore[no-untyped-def]
    """What a receiver does: recompute the HMAC over the raw body with the org's secret."""
    expected = hmac.new(webhook_secret(org).encode(), request.get_data(), hashlib.sha256)
    return hmac.compare_digest("sha256=" + expected.hexdigest(), request.headers[SIGNATURE_HEADER])


def test_webhook_is_signed_and_verified_by_the_receiver(
    eager, actors, local_grant, receiver, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    receiver.expect_request("/hook", method="POST").respond_with_data("ok")
    authentication = local_grant()
    with django_capture_on_commit_callbacks(execute=True):
        authentication_transition(
            authentication=authentication, status=AuthStatus.NEEDS_REAUTH, error="Dead grant."
        )
    assert len(receiver.log) == 1
    request = receiver.log[0][0]
    assert _verify(request, actors.org_a)
    body = json.loads(request.get_data())
    assert body["event"] == "authentication.status_changed"
    assert body["authentication"]["id"] == str(authentication.public_id)
    assert body["authentication"]["status"] == "needs_reauth"
    assert body["authentication"]["previous_status"] == "active"
    assert body["authentication"]["error"] == "Dead grant."
    assert "old-at" not in request.get_data(as_text=True)
    assert "old-rt" not in request.get_data(as_text=True)
    # a forged body does not verify
    forged = request.get_data().replace(b"needs_reauth", b"active")
    digest = hmac.new(webhook_secret(actors.org_a).encode(), forged, hashlib.sha256).hexdigest()
    assert "sha256=" + digest != request.headers[SIGNATURE_HEADER]
    # per organization
    assert webhook_secret(actors.org_a) != webhook_secret(actors.org_b)


def test_webhook_is_retried_on_5xx(
    eager, local_grant, receiver, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    receiver.expect_ordered_request("/hook").respond_with_data("busy", status=503)
    receiver.expect_ordered_request("/hook").respond_with_data("ok", status=200)
    authentication = local_grant()
    with django_capture_on_commit_callbacks(execute=True):
        authentication_transition(authentication=authentication, status=AuthStatus.EXPIRED)
    assert len(receiver.log) == 2
    first, second = receiver.log[0][0], receiver.log[1][0]
    assert first.get_data() == second.get_data()
    assert receiver.log[1][1].status_code == 200
    org = type(authentication.organization).objects.get(pk=authentication.organization_id)
    assert org.webhook_delivered_at is not None and not org.webhook_failing
    assert org.webhook_error == "The receiver answered HTTP 503; retrying."  # then it went


def test_webhook_failures_are_shown_to_admins_on_the_members_page(
    eager, actors, local_grant, receiver, client_for, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    """Deliveries run in workers: a receiver that refuses them must not be a log line only."""
    from workspaces.models import Organization

    receiver.expect_request("/hook").respond_with_data("no such hook", status=404)
    authentication = local_grant()
    with django_capture_on_commit_callbacks(execute=True):
        authentication_transition(authentication=authentication, status=AuthStatus.EXPIRED)
    assert len(receiver.log) == 1  # a 4xx is not retried
    org = Organization.objects.get(pk=actors.org_a.pk)
    assert org.webhook_failing and org.webhook_delivered_at is None
    assert org.webhook_error == (
        "The receiver answered HTTP 404; dropped (only network errors, 5xx, 408, 425 and 429 "
        "are retried)."
    )
    page = client_for(actors.admin).get(f"/o/{org.slug}/members/").content.decode()
    assert "Last attempt failed" in page and "answered HTTP 404; dropped" in page
    assert "Nothing delivered yet." in page
    from workspaces.services import organization_record_webhook, organization_set_webhook

    old_url = org.webhook_url
    organization_set_webhook(organization=org, url=receiver.url_for("/other"), actor=actors.owner_m)
    org.refresh_from_db()
    assert not org.webhook_failing and org.webhook_error == ""  # a new receiver starts afresh
    organization_record_webhook(organization=org, url=old_url, error="late, for the old URL")
    org.refresh_from_db()
    assert org.webhook_error == "" and org.webhook_failed_at is None


def test_webhook_given_up_after_its_retries_says_so(
    eager, actors, local_grant, receiver, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    from services.tasks import WEBHOOK_MAX_RETRIES
    from workspaces.models import Organization

    receiver.expect_request("/hook").respond_with_data("busy", status=503)
    authentication = local_grant()
    with django_capture_on_commit_callbacks(execute=True):
        authentication_transition(authentication=authentication, status=AuthStatus.EXPIRED)
    assert len(receiver.log) == WEBHOOK_MAX_RETRIES + 1
    org = Organization.objects.get(pk=actors.org_a.pk)
    assert org.webhook_failing
    assert org.webhook_error == (
        f"Given up after {WEBHOOK_MAX_RETRIES + 1} attempts; the last: The receiver answered "
        "HTTP 503."
    )


def test_health_sweep_checks_each_authentication_with_its_test_request(
    eager, actors, httpserver, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    from httpclient.tasks import health_sweep_task
    from services.authentications import authentication_create
    from services.models import Service
    from services.status import CHECK_REVOKED

    service = Service.objects.create(
        organization=actors.org_a, owner_workspace=actors.owner_m.personal_workspace,
        name="Checked", slug="checked", base_url=httpserver.url_for("/api"), auth_method="token",
        auth_params={"placement": "bearer"}, test_request={"method": "GET", "path": "/me"},
    )  # fmt: skip

    def me(request):  # type: ignore[no-untyped-def]
        good = request.headers.get("Authorization") == "Bearer good"
        return Response("{}", status=200 if good else 401, content_type="application/json")

    httpserver.expect_request("/api/me").respond_with_handler(me)

    def make(name, token):  # type: ignore[no-untyped-def]
        return authentication_create(
            membership=actors.owner_m, workspace=actors.owner_m.personal_workspace,
            service=service, name=name, values={"token": token},
        )  # fmt: skip

    good, bad = make("Good", "good"), make("Bad", "revoked-one")
    with django_capture_on_commit_callbacks(execute=True):
        assert health_sweep_task() == 2
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.status == AuthStatus.ACTIVE and good.last_checked_at is not None
    assert bad.status == AuthStatus.REVOKED
    assert bad.last_error == CHECK_REVOKED.format(status=401)
    with django_capture_on_commit_callbacks(execute=True):
        assert health_sweep_task() == 0  # both checked just now


def test_health_sweep_skips_what_it_cannot_check_so_the_rest_is_not_starved(
    eager, actors, httpserver, monkeypatch, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    """Uncheckable authentications are never stamped as checked: picked by the sweep, they
    would take its every slot, oldest first, forever."""
    import httpclient.health as health
    from httpclient.tasks import health_sweep_task
    from services.authentications import authentication_create
    from services.models import Service

    monkeypatch.setattr(health, "SWEEP_LIMIT", 2)

    def service(slug, test_request):  # type: ignore[no-untyped-def]
        return Service.objects.create(
            organization=actors.org_a, owner_workspace=actors.owner_m.personal_workspace,
            name=slug, slug=slug, base_url=httpserver.url_for("/api"), auth_method="token",
            auth_params={"placement": "bearer"}, test_request=test_request,
        )  # fmt: skip

    untestable, testable = service("untestable", {}), service("testable", {"path": "/me"})
    httpserver.expect_request("/api/me").respond_with_json({})
    for n in range(3):  # made first: the oldest, as the sweep orders them
        authentication_create(membership=actors.owner_m, workspace=actors.owner_m.personal_workspace,
                              service=untestable, name=f"u{n}", values={"token": "t"})  # fmt: skip
    checked = authentication_create(membership=actors.owner_m,
                                    workspace=actors.owner_m.personal_workspace,
                                    service=testable, name="c", values={"token": "t"})  # fmt: skip
    connector = authentication_create(membership=actors.owner_m,
                                      workspace=actors.owner_m.personal_workspace,
                                      connector="stripe", name="s", values={"token": "t"})  # fmt: skip
    assert set(health.authentications_to_check()) == {checked.pk, connector.pk}
    # the connector's check would go to the real Stripe API: the pick is what this test is about
    Authentication.objects.filter(pk=connector.pk).update(last_checked_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert health_sweep_task() == 1
    checked.refresh_from_db()
    assert checked.last_checked_at is not None and checked.status == AuthStatus.ACTIVE
    assert health.authentications_to_check() == []


def test_webhook_secret_command_prints_the_signing_secret(actors) -> None:  # type: ignore[no-untyped-def]
    import hashlib
    import hmac
    import io

    from django.core.management import call_command

    from services.notify import webhook_signature

    out = io.StringIO()
    call_command("webhook_secret", "--org", "org-a", stdout=out)
    secret = out.getvalue().strip()
    body = b'{"event": "x"}'
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert webhook_signature(actors.org_a, body) == expected
