"""API-key authentication for the JSON API, with a per-key rate limit."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from ninja.security import HttpBearer

from workspaces.services import api_key_authenticate


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Rate limit exceeded: retry after {retry_after} s.")
        self.retry_after = retry_after


def _check_rate(key_prefix: str) -> None:
    """Fixed one-minute window per key, in the shared cache (Redis when configured)."""
    limit = getattr(settings, "API_RATE_LIMIT_PER_MINUTE", 600)
    if not limit:
        return
    window = int(time.time() // 60)
    bucket = f"ratelimit:{key_prefix}:{window}"
    if cache.add(bucket, 1, timeout=70):
        count = 1
    else:
        try:
            count = cache.incr(bucket)
        except ValueError:  # expired between add and incr
            cache.add(bucket, 1, timeout=70)
            count = 1
    if count > limit:
        raise RateLimited(retry_after=max(1, 60 - int(time.time()) % 60))


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
