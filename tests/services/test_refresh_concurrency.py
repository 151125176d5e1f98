"""Two workers refreshing the same grant at once: the provider sees exactly one refresh.

PostgreSQL only: SQLite has no row locks (SELECT ... FOR UPDATE is a no-op there), which is
why production with several workers needs DATABASE_URL (and REDIS_URL for the Redis lock).
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from services import refresh
from services.models import Authentication
from services.refresh import RefreshError, authentication_refresh

from .conftest import in_thread, race_call_and_sweep, token_body

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
        reason="needs PostgreSQL (DATABASE_URL=postgres://...): SQLite has no row locks",
    ),
]


def test_two_workers_one_slow_refresh_the_provider_sees_one(
    transactional_db, local_grant, httpserver
):  # type: ignore[no-untyped-def]
    grant = local_grant()
    calls, results = race_call_and_sweep(httpserver, grant, join_seconds=10)
    assert calls["n"] == 1
    assert isinstance(results["call"], Authentication), results["call"]
    assert isinstance(results["sweep"], Authentication), results["sweep"]
    assert results["sweep"].get_secrets()["access_token"] == "at-1"
    assert results["sweep_seconds"] > 0.5  # it waited on the row lock, then found it done
    grant.refresh_from_db()
    assert grant.refresh_count == 1 and grant.get_secrets()["refresh_token"] == "rt-1"


def test_workers_racing_at_the_real_provider_refresh_once(connect, provider):  # type: ignore[no-untyped-def]
    from oauth2_provider.models import RefreshToken

    grant = connect()
    before = grant.get_secrets()
    Authentication.objects.filter(pk=grant.pk).update(  # due for the sweep workers too
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    issued_before = RefreshToken.objects.count()
    barrier = threading.Barrier(4)

    def worker(kind: str):  # type: ignore[no-untyped-def]
        def run():  # type: ignore[no-untyped-def]
            barrier.wait(5)
            if kind == "call":
                return authentication_refresh(
                    authentication_id=grant.pk,
                    reason=refresh.REASON_CALL,
                    expected_token=before["access_token"],
                )
            return authentication_refresh(authentication_id=grant.pk, reason=refresh.REASON_SWEEP)

        return run

    results: dict = {}
    threads = [
        in_thread(worker(kind), results, f"{kind}{i}")
        for i, kind in enumerate(["call", "sweep", "call", "sweep"])
    ]
    for thread in threads:
        thread.join(20)
    outcomes = [results[k] for k in ("call0", "sweep1", "call2", "sweep3")]
    assert all(isinstance(o, Authentication) for o in outcomes), outcomes
    assert len({o.get_secrets()["access_token"] for o in outcomes}) == 1
    assert RefreshToken.objects.count() == issued_before + 1  # one refresh at the provider
    assert RefreshToken.objects.filter(
        token=before["refresh_token"], revoked__isnull=False
    ).exists()
    grant.refresh_from_db()
    assert grant.refresh_count == 1
    # the stored (rotated) refresh token works at the provider
    again = authentication_refresh(authentication_id=grant.pk, reason=refresh.REASON_MANUAL)
    assert again.refresh_count == 2


def test_a_row_lock_not_had_in_time_fails_the_attempt(
    transactional_db, local_grant, httpserver, settings
):  # type: ignore[no-untyped-def]
    httpserver.expect_request("/token").respond_with_json(token_body())
    settings.AUTH_REFRESH_LOCK_TIMEOUT_SECONDS = 1
    grant = local_grant()
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with transaction.atomic():
            Authentication.objects.select_for_update().get(pk=grant.pk)
            locked.set()
            release.wait(10)

    results: dict = {}
    holder = in_thread(hold, results, "holder")
    assert locked.wait(5)
    started = time.monotonic()
    try:
        with pytest.raises(RefreshError) as info:
            authentication_refresh(authentication_id=grant.pk, reason=refresh.REASON_MANUAL)
    finally:
        release.set()
        holder.join(10)
    assert info.value.message == refresh.LOCK_BUSY and info.value.temporary
    assert 0.9 < time.monotonic() - started < 5
    assert httpserver.log == []
    grant.refresh_from_db()
    assert grant.refresh_count == 0 and grant.get_secrets()["access_token"] == "old-at"
