"""Sending one request through egress, with the retries a call is allowed.

Per attempt the request is built afresh and the auth method applied again (an OAuth1 nonce
is single use; a refreshed token replaces the old one). Retries: one refresh-and-retry when
the method says the status means "token expired"; 429 and 503 honour Retry-After up to a cap,
with jittered backoff when there is none; a bounded number of attempts; never past the call's
deadline.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from django.conf import settings

from httpclient.runner.build import Spec
from httpclient.runner.context import Context, refreshed
from httpclient.runner.types import (
    AUTH_NOT_ENCODABLE,
    KIND_AUTH,
    REFRESH_FAILED,
    CallRejected,
    Retry,
)
from services.auth_methods import AuthApplyError
from services.auth_methods.base import request_body
from traysvc import egress

REFRESH_CRASHED = "Refreshing the grant failed inside traysvc ({kind}); the error was logged."
logger = logging.getLogger("httpclient.runner")

RETRY_STATUSES = frozenset({429, 503})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
NOT_SENT_HEADERS = frozenset({"host", "content-length", "transfer-encoding"})
REASON_RETRY_AFTER = "Retry-After {seconds:g} s"
REASON_BACKOFF = "backoff {seconds:.2f} s"
REASON_REFRESHED = "token refreshed"
NOTE_RETRY_AFTER_TOO_LONG = (
    "The API asked to retry after {seconds:g} s, longer than the {cap:g} s the runner waits: "
    "not retried."
)
NOTE_NO_TIME_TO_RETRY = "Not retried: the wait would pass the call's timeout."
TIMED_OUT = "timed out: the call's time ran out before it could be retried: {url}"


@dataclass
class Sent:
    """The last attempt: its response, the request as built (for curl) and the attempt log."""

    response: egress.EgressResponse
    request: httpx.Request
    auth: httpx.Auth | None
    attempts: int
    retries: list[Retry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP-date), None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _credential_headers(context: Context, request: httpx.Request) -> list[str]:
    """Header names carrying a credential: dropped by egress if a redirect leaves the host."""
    names = []
    for name, value in request.headers.multi_items():
        if context.redactor.header_value(name, value) != value:
            names.append(name)
    return names


def _outgoing(request: httpx.Request) -> list[tuple[str, str]]:
    return [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in request.headers.raw
        if k.decode("latin-1").lower() not in NOT_SENT_HEADERS
    ]


def prepare(context: Context, spec: Spec) -> tuple[httpx.Request, httpx.Auth | None]:
    """The request for one attempt with the credential applied."""
    request = spec.to_request()
    try:
        request, auth = context.method.prepare(
            request, params=context.params, secrets=context.secrets
        )
    except AuthApplyError as exc:
        raise CallRejected(context.redactor.text(str(exc)), kind=KIND_AUTH) from None
    except UnicodeError:
        raise CallRejected(AUTH_NOT_ENCODABLE, kind=KIND_AUTH) from None
    # The call's own headers are ASCII (build checked them); a method may have added UTF-8
    # (a prefix like "Clé"), which egress could not send as it was meant.
    if any(not value.isascii() for _, value in request.headers.raw):
        raise CallRejected(AUTH_NOT_ENCODABLE, kind=KIND_AUTH)
    return request, auth


def _send(
    context: Context,
    request: httpx.Request,
    auth: httpx.Auth | None,
    remaining: float,
    follow_redirects: bool,
    max_redirects: int,
    max_bytes: int,
) -> egress.EgressResponse:
    return egress.send(
        request.method,
        request.url,  # parsed once, in build_spec
        headers=_outgoing(request),
        content=request_body(request) or None,
        auth=auth,
        timeout=remaining,
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        max_bytes=max_bytes,
        verify=context.service.verify_tls,
        allow_origins=context.allow_origins,
        strip_on_redirect=_credential_headers(context, request),
    )


def send_with_retries(
    context: Context,
    spec: Spec,
    *,
    deadline: float,
    follow_redirects: bool,
    max_redirects: int,
    max_bytes: int,
) -> Sent:
    """Send until a final answer: raises egress.EgressError or CallRejected."""
    max_attempts = max(1, int(settings.HTTPCLIENT_MAX_ATTEMPTS))
    wait_cap = float(settings.HTTPCLIENT_RETRY_AFTER_MAX_SECONDS)
    backoff = float(settings.HTTPCLIENT_BACKOFF_SECONDS)
    attempts = 0
    throttled = 0
    did_refresh = False
    retries: list[Retry] = []
    notes: list[str] = []
    while True:
        attempts += 1
        request, auth = prepare(context, spec)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise egress.EgressError(TIMED_OUT.format(url=egress.safe_url(request.url)), "timeout")
        try:
            response = _send(context, request, auth, remaining, follow_redirects, max_redirects,
                             max_bytes)  # fmt: skip
        except egress.EgressError as exc:
            exc.attempts, exc.retries, exc.request = attempts, retries, request  # type: ignore[attr-defined]
            raise
        status = response.status_code
        if (
            not did_refresh
            and context.authentication is not None
            and context.method.is_expired_response(context.params, status)
        ):
            did_refresh = True
            error = _refresh(context)
            if error is None:
                retries.append(Retry(status=status, waited_ms=0.0, reason=REASON_REFRESHED))
                continue
            notes.append(REFRESH_FAILED.format(error=context.redactor.text(error)))
        if status in RETRY_STATUSES and throttled + 1 < max_attempts:
            header = retry_after_seconds(response.headers.get("retry-after"))
            if header is None and status == 503 and request.method not in IDEMPOTENT:
                return Sent(response, request, auth, attempts, retries, notes)
            if header is not None and header > wait_cap:
                notes.append(NOTE_RETRY_AFTER_TOO_LONG.format(seconds=header, cap=wait_cap))
                return Sent(response, request, auth, attempts, retries, notes)
            if header is not None:
                wait = header + random.uniform(0, min(0.25, backoff))  # noqa: S311 - jitter
                reason = REASON_RETRY_AFTER.format(seconds=header)
            else:
                wait = backoff * (2**throttled) * random.uniform(0.5, 1.5)  # noqa: S311
                reason = REASON_BACKOFF.format(seconds=wait)
            if time.monotonic() + wait >= deadline:
                notes.append(NOTE_NO_TIME_TO_RETRY)
                return Sent(response, request, auth, attempts, retries, notes)
            throttled += 1
            retries.append(Retry(status=status, waited_ms=wait * 1000, reason=reason))
            time.sleep(wait)
            continue
        return Sent(response, request, auth, attempts, retries, notes)


def _refresh(context: Context) -> str | None:
    """Refresh the grant once (the shared, locked refresh); None on success, else why not."""
    assert context.authentication is not None  # noqa: S101 - checked by the caller
    from services.refresh import REASON_CALL, RefreshError, authentication_refresh

    try:
        authentication = authentication_refresh(
            authentication_id=context.authentication.pk,
            reason=REASON_CALL,
            expected_token=context.secrets.get("access_token"),
        )
    except RefreshError as exc:  # recorded on the authentication by the refresh itself
        logger.info("refresh after an expired response failed: %s", context.redactor.text(str(exc)))
        return str(exc) or type(exc).__name__
    except Exception as exc:  # a bug, not the provider: keep the traceback, answer the 401
        logger.exception(
            "refresh of authentication %s after an expired response crashed",
            context.authentication.public_id,
        )
        return REFRESH_CRASHED.format(kind=type(exc).__name__)
    refreshed(context, authentication)
    return None
