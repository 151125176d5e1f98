"""`execute(call) -> Result`: the one path every call takes (console, API, health checks).

build context (constant queries) -> build request (422 on bad input) -> send through egress
with retries -> follow pages when asked -> redact -> CallLog row -> Result. Every outcome,
refusals and upstream faults included, is a Result with a CallLog row; nothing raises to
the caller for bad input or a bad upstream.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings

from httpclient.curl import CurlFile, CurlRequest, to_curl
from httpclient.pagination import items_of, next_page, parse_pagination
from httpclient.redaction import Redactor
from httpclient.runner.build import Spec, build_spec
from httpclient.runner.context import Context, build_context, origin_of
from httpclient.runner.record import calllog_record
from httpclient.runner.response import clean, decode_body
from httpclient.runner.send import Sent, send_with_retries
from httpclient.runner.types import (
    NEXT_PAGE_OTHER_HOST,
    PAGE_BYTES_CAPPED,
    PAGES_CAPPED,
    TIMEOUT_INVALID,
    Call,
    CallRejected,
    Page,
    RequestEcho,
    Result,
)
from services.auth_methods.base import request_body
from traysvc import egress

logger = logging.getLogger("httpclient.runner")

INTERNAL_ERROR = "The call failed inside traysvc; the error was logged."
KIND_INTERNAL = "internal"
NO_PAGINATION = "All pages was asked for, but this service declares no pagination."
PAGE_NOT_JSON = "Stopped paging: page {page} is not JSON."
TIMED_OUT = "timed out after {seconds:g} s: {url}"
TLS_OFF = "TLS verification is off for service %s (%s): its certificate is not checked"
SYSTEM_CALL_NEEDS_SERVICE = "A call without a membership must pass the Service instance."


def _timeout(value: Any) -> float:
    default = float(settings.HTTPCLIENT_DEFAULT_TIMEOUT)
    cap = float(settings.HTTPCLIENT_MAX_TIMEOUT)
    if value is None or value == "":
        return min(default, cap)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise CallRejected(TIMEOUT_INVALID, field="timeout") from None
    if not seconds > 0 or seconds != seconds:
        raise CallRejected(TIMEOUT_INVALID, field="timeout")
    return min(seconds, cap)


def _raw_headers(headers: Any) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers.raw]


def _echo(spec: Spec, sent_request: Any, headers: Any, redactor: Redactor) -> RequestEcho:
    body = request_body(sent_request) if sent_request is not None else spec.content
    if body == spec.content or spec.body_type == "multipart":
        shown = spec.body_echo
    else:  # the auth method rewrote the body (SOAP's WS-Security header)
        shown = (body or b"").decode("utf-8", errors="replace")
    url = str(sent_request.url) if sent_request is not None else spec.full_url
    return RequestEcho(
        method=spec.method,
        url=redactor.url(url),
        headers=redactor.headers(_raw_headers(headers) if headers is not None else spec.headers),
        body=redactor.text(shown),
        body_type=spec.body_type,
    )


def _curl(spec: Spec, request: Any, call: Call, context: Context, timeout: float) -> str:
    digest = context.method.key == "digest"
    return to_curl(
        CurlRequest(
            method=request.method,
            url=str(request.url),
            headers=_raw_headers(request.headers),
            body_type=spec.body_type,
            body=request_body(request) or None,
            form_fields=spec.form_fields,
            files=[CurlFile(f.field, f.filename, f.content_type) for f in spec.files],
            follow_redirects=call.follow_redirects,
            max_redirects=int(settings.HTTPCLIENT_MAX_REDIRECTS),
            timeout=timeout,
            verify=context.service.verify_tls,
            digest_username=context.secrets.get("username") if digest else None,
            digest_password=context.secrets.get("password") if digest else None,
        ),
        context.redactor,
    )


def _take(result: Result, sent: Sent, redactor: Redactor, method: str) -> tuple[Any, int]:
    """Fill the result from one response; returns (parsed body, body bytes)."""
    response = sent.response
    content = redactor.bytes(response.content)
    if method == "HEAD":
        kind, body, b64 = "empty", None, None
    else:
        kind, body, b64 = decode_body(content, response.headers)
    result.status = response.status_code
    result.reason = response.reason
    result.headers = redactor.headers(_raw_headers(response.headers))
    result.body, result.body_base64, result.body_kind = body, b64, kind
    result.body_bytes += len(response.content)
    result.truncated = result.truncated or response.truncated
    result.url = redactor.url(response.url)
    result.http_version = response.http_version
    result.ttfb_ms = response.ttfb_ms
    result.attempts += sent.attempts
    result.retries += sent.retries
    result.notes += sent.notes
    result.redirects += [redactor.url(u) for u in response.redirects]
    return body, len(response.content)


def _run(call: Call, context: Context, spec: Spec, result: Result, deadline: float) -> Sent:
    max_redirects = int(settings.HTTPCLIENT_MAX_REDIRECTS)
    max_bytes = int(settings.HTTPCLIENT_MAX_RESPONSE_BYTES)
    send_kwargs = {
        "deadline": deadline,
        "follow_redirects": bool(call.follow_redirects),
        "max_redirects": max_redirects,
        "max_bytes": max_bytes,
    }
    first = send_with_retries(context, spec, **send_kwargs)
    body, size = _take(result, first, context.redactor, spec.method)
    result.request = _echo(spec, first.request, first.response.request_headers, context.redactor)
    if not call.all_pages:
        return first
    pagination = parse_pagination(context.service.pagination)
    if pagination is None:
        result.notes.append(NO_PAGINATION)
        return first
    max_pages = int(settings.HTTPCLIENT_MAX_PAGES)
    byte_cap = int(settings.HTTPCLIENT_MAX_PAGE_BYTES)
    redactor = context.redactor
    first_headers = result.headers
    pages = [Page(result.url, first.response.status_code, size, _count(body, pagination))]
    bodies, total, sent, current = [body], size, first, spec
    while 200 <= sent.response.status_code < 300:
        if result.body_kind != "json":
            result.notes.append(PAGE_NOT_JSON.format(page=len(pages)))
            break
        following = next_page(
            pagination,
            url=sent.response.url,
            query=current.query,
            headers=sent.response.headers,
            body=body,
        )
        if following is None:
            break
        if len(pages) >= max_pages:
            result.notes.append(PAGES_CAPPED.format(pages=max_pages))
            break
        if total >= byte_cap:
            result.notes.append(PAGE_BYTES_CAPPED.format(megabytes=byte_cap // (1024 * 1024)))
            break
        if following.url is not None:
            import httpx

            if origin_of(httpx.URL(following.url)) != spec.origin:
                origin = f"{spec.origin[0]}://{spec.origin[1]}:{spec.origin[2]}"
                result.notes.append(NEXT_PAGE_OTHER_HOST.format(origin=origin))
                break
            current = current.with_url(following.url)
        else:
            current = current.with_query(following.query or [])
        sent = send_with_retries(context, current, **send_kwargs)
        body, size = _take(result, sent, redactor, spec.method)
        total += size
        pages.append(Page(result.url, sent.response.status_code, size, _count(body, pagination)))
        bodies.append(body)
    result.pages = pages
    result.headers = first_headers
    if len(bodies) > 1:
        items = [items_of(b, pagination.items_path) for b in bodies]
        if pagination.items_path and all(i is not None for i in items):
            result.body = [item for page_items in items for item in page_items]  # type: ignore[union-attr]
        else:
            result.body = bodies
        result.body_kind = "json"
    return first


def _count(body: Any, pagination: Any) -> int | None:
    items = items_of(body, pagination.items_path)
    return len(items) if items is not None else None


def _audit_refusal(call: Call, context: Context | None, message: str, url: str) -> None:
    from workspaces.services import audit

    organization = None
    if call.membership is not None:
        organization = call.membership.organization
    elif call.organization is not None:
        organization = call.organization
    elif context is not None:
        organization = context.service.organization
    if organization is None:
        return
    audit(
        organization=organization,
        actor=call.membership.user if call.membership is not None else None,
        action="call.refused",
        target_type="service",
        target_id=str(context.service.public_id) if context is not None else "",
        details={"url": url, "reason": message},
    )


def _details(call: Call, result: Result, redactor: Redactor) -> dict[str, Any]:
    from httpclient.runner.build import _pairs

    try:
        query = redactor.query_pairs(_pairs(call.query, "", "query"))
        headers = redactor.headers(_pairs(call.headers, "", "headers"))
    except CallRejected:
        query, headers = [], []
    return {
        "reason": result.reason,
        "http_version": result.http_version,
        "body_kind": result.body_kind,
        "retries": [r.as_dict() for r in result.retries],
        "pages": [p.as_dict() for p in result.pages],
        "redirects": result.redirects,
        "notes": result.notes,
        "request": {
            "path": redactor.text(call.path if isinstance(call.path, str) else ""),
            "query": query,
            "headers": headers,
            "body_type": call.body_type if isinstance(call.body_type, str) else "",
            "follow_redirects": bool(call.follow_redirects),
            "all_pages": bool(call.all_pages),
            "timeout": call.timeout if isinstance(call.timeout, int | float) else None,
        },
    }


def execute(call: Call) -> Result:
    """Run one call to completion; always returns a Result and writes a CallLog row."""
    if (
        call.membership is None
        and call.organization is None
        and not hasattr(call.service, "organization_id")
    ):
        raise ValueError(SYSTEM_CALL_NEEDS_SERVICE)
    started = time.monotonic()
    result = Result()
    context: Context | None = None
    spec: Spec | None = None
    redactor = Redactor()
    timeout: float | None = None
    try:
        context = build_context(call)
        redactor = context.redactor
        spec = build_spec(call, context)
        result.url = redactor.url(spec.full_url)
        timeout = _timeout(call.timeout)
        if not context.service.verify_tls:
            logger.warning(TLS_OFF, context.service.name, context.service.public_id)
        first = _run(call, context, spec, result, started + timeout)
        result.curl = _curl(spec, first.request, call, context, timeout)
    except CallRejected as exc:
        result.error, result.error_kind = clean(redactor.text(exc.message)), exc.kind
        result.error_field = exc.field
    except egress.EgressError as exc:
        message = exc.message
        if exc.kind == "timeout" and timeout is not None:  # egress saw only what was left of it
            message = TIMED_OUT.format(seconds=timeout, url=exc.url or result.url)
        result.error, result.error_kind = redactor.text(message), exc.kind
        result.attempts += getattr(exc, "attempts", 1)
        result.retries += getattr(exc, "retries", [])
        sent_request = getattr(exc, "request", None)
        if spec is not None and sent_request is not None and context is not None:
            result.request = _echo(spec, sent_request, sent_request.headers, redactor)
            result.curl = _curl(spec, sent_request, call, context, timeout or 0)
        if exc.kind == "refused":
            _audit_refusal(call, context, result.error, redactor.text(exc.url))
    except Exception as exc:  # noqa: BLE001 - a bug must not take the worker down or leak
        logger.error(
            "call failed inside the runner: %s: %s", type(exc).__name__, redactor.text(str(exc))
        )
        result.error, result.error_kind = INTERNAL_ERROR, KIND_INTERNAL
    result.elapsed_ms = (time.monotonic() - started) * 1000
    if result.request is None and spec is not None:
        result.request = _echo(spec, None, None, redactor)
    elif result.request is None:
        result.request = RequestEcho(
            method=str(call.method or "").upper()[:10], url="", body_type=str(call.body_type)
        )
    result.call_id = calllog_record(
        organization_id=_org_id(call, context),
        user=call.membership.user if call.membership is not None else None,
        service_id=context.service.pk if context is not None else None,
        authentication_id=(
            context.authentication.pk
            if context is not None and context.authentication is not None
            else None
        ),
        source=call.source,
        result=result,
        details=_details(call, result, redactor),
    )
    logger.info(
        "call %s %s %s -> %s in %.1f ms, %d attempt(s)%s",
        result.call_id,
        result.request.method,
        result.url,
        result.status if result.status is not None else result.error_kind,
        result.elapsed_ms,
        result.attempts,
        f": {result.error}" if result.error else "",
    )
    if context is not None and context.authentication is not None and result.attempts:
        from services.status import authentication_mark_used

        authentication_mark_used(
            context.authentication,
            actor=call.membership.user if call.membership is not None else None,
        )
    return result


def _org_id(call: Call, context: Context | None) -> int:
    if context is not None:
        return context.organization_id
    if call.membership is not None:
        return call.membership.organization_id
    if call.organization is not None:
        return call.organization.pk
    return call.service.organization_id  # type: ignore[union-attr]
