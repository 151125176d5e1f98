"""One Redis client (and connection pool) per process for REDIS_URL: locks, rate limits."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings


@lru_cache(maxsize=4)
def _client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def redis_client() -> Any | None:
    """The shared client, or None when REDIS_URL is not set (embedded mode)."""
    url = getattr(settings, "REDIS_URL", "")
    return _client(url) if url else None
