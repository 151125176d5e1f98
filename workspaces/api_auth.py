"""API-key authentication for the JSON API, with a per-key rate limit."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest
from ninja.security import HttpBearer

from traysvc.redis_client import redis_client
from workspaces.services import api_key_authenticate

logger = logging.getLogger("workspaces.api")


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Rate limit exceeded: retry after {retry_after} s.")
        self.retry_after = retry_after


def _count_in_database(key_prefix: str, window: int) -> int:
    """One atomic UPSERT (SQLite 3.35+ and PostgreSQL both answer RETURNING)."""
    from workspaces.models import ApiRateCounter

    table = connection.ops.quote_name(ApiRateCounter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (key_prefix, minute, count) VALUES (%s, %s, 1) "  # noqa: S608
            "ON CONFLICT (key_prefix, minute) DO UPDATE SET count = "
            f"{table}.count + 1 RETURNING count",
            [key_prefix, window],
        )
        count = int(cursor.fetchone()[0])
        if count == 1:  # first request of this minute: drop this key's old windows
            cursor.execute(
                f"DELETE FROM {table} WHERE key_prefix = %s AND minute < %s",  # noqa: S608
                [key_prefix, window - 1],
            )
    return count


# After Redis fails to answer, the limiter leaves it alone this long (per process): a Redis
# that hangs would otherwise cost every request its socket timeout.
REDIS_BACKOFF_SECONDS = 30.0
_redis_down_until = 0.0


def _count_in_redis(client: Any, key_prefix: str, window: int) -> int:
    """INCR and EXPIRE in one round trip, as one MULTI (the cache API's add + incr took three)."""
    bucket = f"traysvc:ratelimit:{key_prefix}:{window}"
    pipe = client.pipeline(transaction=True)
    pipe.incr(bucket)
    pipe.expire(bucket, 120)  # a window's key outlives its minute a little, never forever
    count, _ = pipe.execute()
    return int(count)


def _check_rate(key_prefix: str) -> None:
    """Fixed one-minute window per key, shared by every process (Redis, else the database)."""
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    if not limit:
        return
    now = time.time()
    window = int(now // 60)
    client = redis_client()
    if client is None:
        count = _count_in_database(key_prefix, window)
    else:
        global _redis_down_until
        if time.monotonic() < _redis_down_until:
            return
        import redis

        try:
            count = _count_in_redis(client, key_prefix, window)
        except redis.RedisError as exc:  # the API stays up; the limit is off until Redis is back
            _redis_down_until = time.monotonic() + REDIS_BACKOFF_SECONDS
            logger.warning(
                "API rate limit not applied for %d s: Redis did not answer (%s)",
                REDIS_BACKOFF_SECONDS,
                exc,
            )
            return
    if count > limit:
        raise RateLimited(retry_after=max(1, 60 - int(now) % 60))


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer tsk_...`: the key acts as its member, in its organization."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        key = api_key_authenticate(token)
        if key is None:
            return None
        _check_rate(key.prefix)
        request.membership = key.membership  # type: ignore[attr-defined]
        request.organization = key.membership.organization  # type: ignore[attr-defined]
        request.user = key.membership.user
        return key
