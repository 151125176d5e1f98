"""The sandbox demo API: small JSON endpoints behind the sandbox OAuth2 provider.

Each endpoint accepts only a valid access token issued by the provider mounted at
/sandbox/o/ (django-oauth-toolkit validates it), so the whole flow — connect, call, watch the
token expire and refresh, revoke — can be tried offline. The endpoints are shaped like the
APIs people actually call: a "who am I", a paginated list (cursor in the body and an RFC 8288
Link header), one that fails on demand (429/500/503 with Retry-After) and an echo.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParser
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauth2_provider.www_authenticate import build_bearer_challenge, challenge_status

ITEM_COUNT = 45
DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 50
FLAKY_STATUSES = (429, 500, 503)
MAX_RETRY_AFTER = 3600
MAX_FAIL_TIMES = 100
FLAKY_COUNTER_SECONDS = 3600
ECHO_BODY_LIMIT = 64 * 1024
# Request headers the echo never reflects: the credential and the browser session.
ECHO_HIDDEN_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})

# Scopes each endpoint needs (the provider's SCOPES setting describes them).
SCOPE_ME = ["profile"]
SCOPE_READ = ["read"]

# User-facing messages (tests assert these words).
ERR_INVALID_TOKEN = (
    "A valid access token is required: send Authorization: Bearer <token> "
    "(the token may be missing, expired or revoked)."
)
ERR_INSUFFICIENT_SCOPE = "This access token lacks the scope this endpoint needs: {scopes}."
ERR_NOT_POSITIVE = "{name} must be a whole number of at least 1."
ERR_FLAKY_STATUS = "status must be one of 429, 500 or 503."
ERR_RETRY_AFTER = "retry_after must be a whole number of seconds from 0 to 3600."
ERR_FAIL_TIMES = "fail_times must be a whole number from 0 to 100."
ERR_FAIL_TIMES_KEY = "fail_times needs a key: the counter of failures is kept per key."
ERR_FLAKY_FAILED = "The sandbox failed on purpose with status {status}."
ERR_BODY_TOO_LARGE = "The echo endpoint accepts bodies up to 65536 bytes."

ViewFunc = Callable[..., HttpResponse]


class BadParam(Exception):
    """A query parameter the endpoint cannot use; the message is for the caller."""


def _error(status: int, error: str, detail: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": error, "detail": detail, **extra}, status=status)


def sandbox_resource(*, scopes: list[str]) -> Callable[[ViewFunc], ViewFunc]:
    """Protect a view with the sandbox provider's access tokens (RFC 6750 bearer).

    Like DOT's ``protected_resource``, but failures answer JSON with a ``WWW-Authenticate:
    Bearer`` challenge — 401 for a missing, expired or revoked token, 403 for a missing
    scope — and the view gets the validated ``AccessToken`` as ``request.access_token``.
    CSRF does not apply: the credential is the bearer token, never a cookie.
    """

    def decorator(view: ViewFunc) -> ViewFunc:
        @csrf_exempt
        @wraps(view)
        def protected(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            # Cache the raw body before DOT reads request.POST: a multipart stream can be
            # read only once, and the echo endpoint shows the body as well as the form.
            request.body  # noqa: B018
            valid, oauthlib_request = get_oauthlib_core().verify_request(request, scopes=scopes)
            if valid:
                request.access_token = oauthlib_request.access_token  # type: ignore[attr-defined]
                request.resource_owner = oauthlib_request.user  # type: ignore[attr-defined]
                return view(request, *args, **kwargs)
            oauth2_error = getattr(oauthlib_request, "oauth2_error", None) or {}
            status = challenge_status(oauth2_error)
            if status == 403:
                response = _error(
                    403,
                    "insufficient_scope",
                    ERR_INSUFFICIENT_SCOPE.format(scopes=" ".join(scopes)),
                    required_scopes=scopes,
                )
            else:
                response = _error(401, "invalid_token", ERR_INVALID_TOKEN)
            response["WWW-Authenticate"] = build_bearer_challenge(
                request, oauth2_error=oauth2_error, resource_metadata_url=None
            )
            return response

        return protected

    return decorator


def _positive_int(request: HttpRequest, name: str, default: int) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParam(ERR_NOT_POSITIVE.format(name=name)) from None
    if value < 1:
        raise BadParam(ERR_NOT_POSITIVE.format(name=name))
    return value


def _token_scopes(request: HttpRequest) -> list[str]:
    return sorted(request.access_token.scope.split())  # type: ignore[attr-defined]


@require_GET
@sandbox_resource(scopes=SCOPE_ME)
def me(request: HttpRequest) -> JsonResponse:
    """Who the token speaks for: the user's email (none for client credentials) and scopes."""
    token = request.access_token  # type: ignore[attr-defined]
    user = token.user
    return JsonResponse(
        {
            "email": user.email if user is not None else None,
            "client_id": token.application.client_id,
            "grant": "client_credentials" if user is None else "authorization_code",
            "scopes": _token_scopes(request),
            "expires_at": token.expires.isoformat(),
        }
    )


def item(number: int) -> dict[str, Any]:
    """Item number 1..45: fixed data, so paging can be checked exactly."""
    return {
        "id": f"item-{number:03d}",
        "number": number,
        "name": f"Sandbox item {number}",
        "even": number % 2 == 0,
    }


@require_GET
@sandbox_resource(scopes=SCOPE_READ)
def items(request: HttpRequest) -> JsonResponse:
    """45 fixed items, page by page: ``next`` in the body and a Link rel="next" header.

    ``page`` starts at 1; ``per_page`` defaults to 10 and is capped at 50 (like GitHub, a
    larger value is lowered rather than refused). Past the last page the list is empty.
    """
    try:
        page = _positive_int(request, "page", 1)
        per_page = min(_positive_int(request, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    except BadParam as exc:
        return _error(400, "invalid_request", str(exc))
    start = (page - 1) * per_page
    numbers = range(start + 1, min(start + per_page, ITEM_COUNT) + 1)
    has_next = start + per_page < ITEM_COUNT
    body = {
        "items": [item(n) for n in numbers],
        "page": page,
        "per_page": per_page,
        "total": ITEM_COUNT,
        "next": str(page + 1) if has_next else None,
    }
    response = JsonResponse(body)
    links = []
    base = request.build_absolute_uri(request.path)
    if has_next:
        links.append(f'<{base}?{urlencode({"page": page + 1, "per_page": per_page})}>; rel="next"')
    if page > 1:
        prev = min(page - 1, max(1, -(-ITEM_COUNT // per_page)))
        links.append(f'<{base}?{urlencode({"page": prev, "per_page": per_page})}>; rel="prev"')
    if links:
        response["Link"] = ", ".join(links)
    return response


def _flaky_params(request: HttpRequest) -> tuple[int, int | None, int | None, str]:
    raw_status = request.GET.get("status", "503")
    if raw_status not in {str(s) for s in FLAKY_STATUSES}:
        raise BadParam(ERR_FLAKY_STATUS)
    retry_after = None
    if request.GET.get("retry_after", "") != "":
        try:
            retry_after = int(request.GET["retry_after"])
        except ValueError:
            raise BadParam(ERR_RETRY_AFTER) from None
        if not 0 <= retry_after <= MAX_RETRY_AFTER:
            raise BadParam(ERR_RETRY_AFTER)
    fail_times = None
    key = request.GET.get("key", "")
    if request.GET.get("fail_times", "") != "":
        try:
            fail_times = int(request.GET["fail_times"])
        except ValueError:
            raise BadParam(ERR_FAIL_TIMES) from None
        if not 0 <= fail_times <= MAX_FAIL_TIMES:
            raise BadParam(ERR_FAIL_TIMES)
        if not key:
            raise BadParam(ERR_FAIL_TIMES_KEY)
    return int(raw_status), retry_after, fail_times, key


def _attempt(request: HttpRequest, key: str) -> int:
    """Count this call for (client, key); the count lives in the cache for an hour."""
    client_id = request.access_token.application.client_id  # type: ignore[attr-defined]
    cache_key = f"sandbox:flaky:{client_id}:{key}"[:200]
    cache.add(cache_key, 0, FLAKY_COUNTER_SECONDS)
    try:
        return cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, 1, FLAKY_COUNTER_SECONDS)
        return 1


@require_GET
@sandbox_resource(scopes=SCOPE_READ)
def flaky(request: HttpRequest) -> JsonResponse:
    """Fail on demand: ``status`` (429, 500 or 503; default 503), ``retry_after`` seconds.

    Without ``fail_times`` every call fails. With ``fail_times=K&key=X`` the first K calls
    for that key fail and later ones succeed, so a client's retry logic can be watched.
    """
    try:
        status, retry_after, fail_times, key = _flaky_params(request)
    except BadParam as exc:
        return _error(400, "invalid_request", str(exc))
    attempt = None
    if fail_times is not None:
        attempt = _attempt(request, key)
        if attempt > fail_times:
            return JsonResponse({"ok": True, "attempt": attempt, "key": key})
    response = _error(
        status,
        "sandbox_failure",
        ERR_FLAKY_FAILED.format(status=status),
        attempt=attempt,
    )
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _lists(data: QueryDict) -> dict[str, list[str]]:
    return {key: data.getlist(key) for key in data}


def _echo_body(request: HttpRequest) -> dict[str, Any]:
    raw = request.body
    content_type = request.content_type or ""
    body: dict[str, Any] = {
        "content_type": request.META.get("CONTENT_TYPE", ""),
        "body": raw.decode("utf-8", errors="replace"),
        "json": None,
        "form": None,
        "files": [],
    }
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            body["json"] = json.loads(raw) if raw else None
        except ValueError:
            body["json"] = None
    elif content_type == "application/x-www-form-urlencoded":
        body["form"] = _lists(QueryDict(raw, encoding=request.encoding))
    elif content_type == "multipart/form-data":
        # Django parses multipart for POST only; PUT and PATCH carry it too.
        if request.method == "POST":
            form, files = request.POST, request.FILES
        else:
            parser = MultiPartParser(
                request.META, io.BytesIO(raw), request.upload_handlers, request.encoding
            )
            form, files = parser.parse()
        body["form"] = _lists(form)
        body["files"] = [
            {"field": field, "filename": f.name, "size": f.size, "content_type": f.content_type}
            for field in files
            for f in files.getlist(field)
        ]
        body["body"] = ""  # the parts are listed above; raw multipart is noise
    return body


def limit_body(limit: int) -> Callable[[ViewFunc], ViewFunc]:
    """Answer 413 before reading a body longer than `limit` bytes (by Content-Length)."""

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def limited(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return _error(413, "payload_too_large", ERR_BODY_TOO_LARGE)
            return view(request, *args, **kwargs)

        return limited

    return decorator


@csrf_exempt
@require_http_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
@limit_body(ECHO_BODY_LIMIT)
@sandbox_resource(scopes=SCOPE_READ)
def echo(request: HttpRequest) -> JsonResponse:
    """What the sandbox received: method, headers (minus credentials), query and body."""
    query = request.META.get("QUERY_STRING", "")
    headers = {
        name: value
        for name, value in request.headers.items()
        if name.lower() not in ECHO_HIDDEN_HEADERS
    }
    return JsonResponse(
        {
            "method": request.method,
            "path": request.path,
            "headers": headers,
            "query": [list(pair) for pair in parse_qsl(query, keep_blank_values=True)],
            **_echo_body(request),
        }
    )
