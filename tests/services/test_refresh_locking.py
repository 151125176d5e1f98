"""Refreshes are serialised without Redis too (the embedded mode: SQLite, a web process and a
Celery worker on one machine): a file lock under VAR_DIR/locks, then a fresh read.

The two-process test is the real shape of `make run`: two processes on one SQLite file, and a
token endpoint that writes to that file during the call (as the sandbox provider does when it
rotates the refresh token). Exactly one refresh reaches the provider, and it is stored.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from werkzeug import Response

from services import refresh
from services.models import Authentication
from services.refresh import RefreshError, refresh_lock

from .conftest import race_call_and_sweep, token_body

REPO = Path(__file__).resolve().parents[2]
WORKER = """
import json, sys
import django
django.setup()
from services.refresh import RefreshError, authentication_refresh
try:
    done = authentication_refresh(authentication_id=int(sys.argv[1]), reason="sweep")
    print(json.dumps({"ok": True, "access": done.get_secrets()["access_token"],
                      "count": done.refresh_count}))
except RefreshError as exc:
    print(json.dumps({"ok": False, "error": exc.message}))
"""


@pytest.fixture
def var_dir(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.VAR_DIR = tmp_path / "var"
    settings.REDIS_URL = ""
    return settings.VAR_DIR


def test_the_file_lock_excludes_a_second_holder_for_a_bounded_time(var_dir, settings) -> None:  # type: ignore[no-untyped-def]
    settings.AUTH_REFRESH_LOCK_TIMEOUT_SECONDS = 0.3
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with refresh_lock(41):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(5)
    started = time.monotonic()
    with pytest.raises(RefreshError) as info:
        with refresh_lock(41):
            pass  # pragma: no cover - must not be reached
    waited = time.monotonic() - started
    assert info.value.message == refresh.LOCK_BUSY and info.value.code == "lock_busy"
    assert info.value.temporary and 0.25 <= waited < 3
    with refresh_lock(42):  # another grant's lock is independent
        pass
    release.set()
    holder.join(5)
    with refresh_lock(41):  # released: free again
        pass
    assert (var_dir / "locks" / "refresh-41.lock").exists()


def test_an_unwritable_lock_directory_fails_the_attempt_in_words(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    settings.VAR_DIR = blocker  # VAR_DIR/locks cannot be created under a file
    settings.REDIS_URL = ""
    with pytest.raises(RefreshError) as info:
        with refresh_lock(1):
            pass  # pragma: no cover
    assert info.value.code == "lock_unavailable" and info.value.temporary
    assert info.value.message.startswith(refresh.LOCK_FILE_UNAVAILABLE.split("(")[0])


def test_two_threads_on_sqlite_refresh_once(
    transactional_db, var_dir, local_grant, httpserver
) -> None:  # type: ignore[no-untyped-def]
    grant = local_grant()
    calls, results = race_call_and_sweep(httpserver, grant, join_seconds=15)
    assert calls["n"] == 1
    assert isinstance(results["call"], Authentication), results["call"]
    assert isinstance(results["sweep"], Authentication), results["sweep"]
    assert results["sweep"].get_secrets()["access_token"] == "at-1"  # it saw the rotation
    grant.refresh_from_db()
    assert grant.refresh_count == 1 and grant.get_secrets()["refresh_token"] == "rt-1"


def _copy_test_database(path: Path) -> None:
    """The in-memory test database (schema and rows), as a file two processes can share."""
    connection.ensure_connection()
    target = sqlite3.connect(path)
    connection.connection.backup(target)
    target.execute("CREATE TABLE provider_writes (n INTEGER)")
    target.commit()
    target.close()


def _worker_env(database: Path, var: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="traysvc.settings",
        TRAYSVC_TESTING="1",
        DATABASE_URL=f"sqlite:///{database}",
        TRAYSVC_VAR_DIR=str(var),
        TRAYSVC_ENCRYPTION_KEYS=",".join(django_settings.TRAYSVC_ENCRYPTION_KEYS),
        SECRET_KEY=django_settings.SECRET_KEY,
        HTTPCLIENT_ALLOW_NETWORKS="127.0.0.0/8",
        AUTH_REFRESH_LOCK_TIMEOUT_SECONDS="30",
        PYTHONPATH=str(REPO),
    )
    return env


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the embedded mode's database")
def test_two_processes_on_one_sqlite_file_refresh_once_while_the_provider_writes(
    transactional_db, local_grant, httpserver, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    database = tmp_path / "db.sqlite3"
    calls = {"n": 0}

    def provider(request):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        n = calls["n"]
        writer = sqlite3.connect(database, timeout=10)  # the provider's own write, committed
        writer.execute("INSERT INTO provider_writes VALUES (?)", (n,))
        writer.commit()
        writer.close()
        time.sleep(1.0)
        body = token_body(access=f"at-{n}", refresh=f"rt-{n}")
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/token").respond_with_handler(provider)
    grant = local_grant()  # expires in 60 s: due for the sweep in both processes
    _copy_test_database(database)
    env = _worker_env(database, tmp_path / "var")
    workers = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", WORKER, str(grant.pk)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=90)
        assert worker.returncode == 0, err[-3000:]
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    assert calls["n"] == 1, outputs
    assert all(o["ok"] for o in outputs), outputs
    assert [o["access"] for o in outputs] == ["at-1", "at-1"]
    assert [o["count"] for o in outputs] == [1, 1]
    stored = sqlite3.connect(database)
    (count,) = stored.execute(
        "SELECT refresh_count FROM services_authentication WHERE id = ?", (grant.pk,)
    ).fetchone()
    stored.close()
    assert count == 1
