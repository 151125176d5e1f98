"""Locks that serialise the refreshes of one grant (services.refresh uses them).

With REDIS_URL: a Redis lock (several hosts share one Redis). Without it (the embedded mode,
one machine by definition: the web process and the Celery worker): an exclusive flock on
VAR_DIR/locks/refresh-<id>.lock. Either is held across the whole refresh, token call included,
and waited for at most AUTH_REFRESH_LOCK_TIMEOUT_SECONDS; a lock not had in time fails the
attempt with RefreshError (LOCK_BUSY), never refreshes without it. On PostgreSQL the row lock
comes on top, bounded by ``lock_timeout``.
"""

# ruff: noqa: S105 - message constants mention tokens; none is a secret

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import OperationalError, connection

from traysvc.redis_client import redis_client

# The refresh's own logger: operators grep one name for everything about refreshing.
logger = logging.getLogger("services.refresh")

LOCK_BUSY = "Could not refresh now: another refresh is in progress. Try again in a moment."
LOCK_UNAVAILABLE = (
    "Could not refresh now: the lock service (Redis) cannot be reached, so no refresh was "
    "attempted. It is retried automatically."
)
LOCK_FILE_UNAVAILABLE = (
    "Could not refresh now: the lock file cannot be opened ({error}), so no refresh was "
    "attempted. Check that traysvc may write to its var/locks directory."
)
FILE_LOCK_POLL_SECONDS = 0.05


class RefreshError(Exception):
    """A refresh that did not happen. ``temporary``: retry later; else the user must act."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        temporary: bool,
        retry_at: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.temporary = temporary
        self.retry_at = retry_at


def lock_timeout_seconds() -> float:
    return float(getattr(settings, "AUTH_REFRESH_LOCK_TIMEOUT_SECONDS", 10))


def lock_file_path(authentication_id: int) -> Path:
    """The embedded mode's lock file for one grant (never deleted: unlinking a file another
    process is waiting on would let two processes lock two different files)."""
    return Path(settings.VAR_DIR) / "locks" / f"refresh-{authentication_id}.lock"


@contextlib.contextmanager
def _file_lock(authentication_id: int) -> Iterator[None]:
    """An exclusive flock, waited for at most AUTH_REFRESH_LOCK_TIMEOUT_SECONDS.

    The file is opened for each acquisition: flock belongs to the open file description, so
    two threads of one process exclude each other too.
    """
    import fcntl

    path = lock_file_path(authentication_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        logger.warning("refresh lock file %s cannot be opened: %s", path, exc)
        message = LOCK_FILE_UNAVAILABLE.format(error=exc.strerror or type(exc).__name__)
        raise RefreshError(message, code="lock_unavailable", temporary=True) from exc
    try:
        deadline = time.monotonic() + lock_timeout_seconds()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RefreshError(LOCK_BUSY, code="lock_busy", temporary=True) from None
                time.sleep(FILE_LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def refresh_lock(authentication_id: int) -> Iterator[None]:
    """The Redis lock when REDIS_URL is set, else the file lock; RefreshError if not had in
    time. Both span the whole refresh, token call included."""
    client = redis_client()
    if client is None:
        with _file_lock(authentication_id):
            yield
        return
    import redis

    ttl = float(getattr(settings, "AUTH_TOKEN_TIMEOUT_SECONDS", 15)) + 45
    lock = client.lock(
        f"traysvc:refresh:{authentication_id}", timeout=ttl,
        blocking_timeout=lock_timeout_seconds(),
    )  # fmt: skip
    try:
        acquired = lock.acquire()
    except redis.RedisError as exc:
        logger.warning("refresh lock for authentication %s unavailable: %s", authentication_id, exc)
        raise RefreshError(LOCK_UNAVAILABLE, code="lock_unavailable", temporary=True) from exc
    if not acquired:
        raise RefreshError(LOCK_BUSY, code="lock_busy", temporary=True)
    try:
        yield
    finally:
        try:
            lock.release()
        except redis.RedisError as exc:  # expired meanwhile, or Redis went away
            logger.warning("releasing refresh lock of %s failed: %s", authentication_id, exc)


def has_row_locks() -> bool:
    return bool(connection.features.has_select_for_update)


def bound_lock_wait() -> None:
    if connection.vendor == "postgresql":
        milliseconds = max(1, int(lock_timeout_seconds() * 1000))
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = {milliseconds}")


def restore_lock_wait() -> None:
    """Only the row lock is bounded: a caller's enclosing transaction keeps its own setting."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = DEFAULT")


def is_lock_timeout(exc: OperationalError) -> bool:
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == "55P03":  # lock_not_available
        return True
    return "database is locked" in str(exc).lower()
