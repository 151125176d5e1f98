"""The request console (/o/<org>/console/) and the pages of past calls.

The form posts normally and the page answers with the result under it; with htmx the same
view answers with just the result panel (and the history, out of band). Services are those
of the organization; authentications only those in the member's own workspaces.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from httpclient.forms import MAX_FILES, ConsoleForm
from httpclient.models import CallLog
from httpclient.runner import Result, execute
from services.authentications import authentications_usable_by
from services.selectors import services_visible_to
from workspaces.access import org_member_required

HISTORY_SIZE = 20
BLANK_ROWS = 2
REJECTED_STATUSES = (404, 422)


def _history(membership: Any) -> list[CallLog]:
    return list(
        CallLog.objects.filter(
            organization_id=membership.organization_id, user_id=membership.user_id
        )
        .select_related("service")
        .only(
            "public_id", "created_at", "method", "url", "status", "elapsed_ms", "error",
            "error_kind", "attempts", "service__name", "source",
        )
        .order_by("-created_at")[:HISTORY_SIZE]
    )  # fmt: skip


def pretty_body(result: Result) -> str:
    """The response body as the panel shows it."""
    if result.body_kind == "json" and result.body is not None:
        return json.dumps(result.body, indent=2, ensure_ascii=False)
    if result.body_kind == "text":
        return str(result.body or "")
    if result.body_kind == "binary":
        return result.body_base64 or ""
    return ""


def _rows(pairs: list[tuple[str, str]] | list[list[str]]) -> list[tuple[str, str]]:
    return [(str(n), str(v)) for n, v in pairs] + [("", "")] * BLANK_ROWS


def _prefill(membership: Any, request: HttpRequest) -> tuple[dict[str, Any], dict[str, list]]:
    """Initial values from ?service=&authentication= or a past call (?from=<call id>)."""
    initial: dict[str, Any] = {}
    rows: dict[str, list] = {"query": [], "header": [], "form": []}
    for key in ("service", "authentication", "method", "path"):
        if request.GET.get(key):
            initial[key] = request.GET[key]
    source = request.GET.get("from")
    if source:
        try:
            log = (
                CallLog.objects.filter(
                    organization_id=membership.organization_id,
                    user_id=membership.user_id,
                    public_id=uuid.UUID(source),
                )
                .select_related("service", "authentication")
                .first()
            )
        except ValueError:
            log = None
        if log is not None:
            entered = (log.details or {}).get("request", {})
            initial.update(
                method=log.method or "GET",
                path=entered.get("path", ""),
                body_type=entered.get("body_type") or "none",
                follow_redirects=entered.get("follow_redirects", True),
                all_pages=entered.get("all_pages", False),
                timeout=entered.get("timeout"),
            )
            if log.service is not None:
                initial["service"] = str(log.service.public_id)
            if log.authentication is not None:
                initial["authentication"] = str(log.authentication.public_id)
            if initial["body_type"] in ("json", "raw"):
                initial["body"] = log.request_body
            rows["query"] = entered.get("query", [])
            rows["header"] = entered.get("headers", [])
    return initial, rows


@org_member_required
@require_http_methods(["GET", "POST"])
def console(request: HttpRequest) -> HttpResponse:
    membership = request.membership  # type: ignore[attr-defined]
    services = list(services_visible_to(membership=membership))
    authentications = list(authentications_usable_by(membership=membership))
    result: Result | None = None
    status = 200
    if request.method == "POST":
        form = ConsoleForm(request.POST, services=services, authentications=authentications)
        rows = {p: form.pairs(p) for p in ("query", "header", "form")}
        if form.is_valid():
            call = form.to_call(membership=membership, files=request.FILES)
            if form.errors:
                status = 422
            else:
                result = execute(call)
                if result.http_status in REJECTED_STATUSES:
                    status = result.http_status
        else:
            status = 422
    else:
        initial, rows = _prefill(membership, request)
        form = ConsoleForm(initial=initial, services=services, authentications=authentications)
    context = {
        "form": form,
        "services": services,
        "authentications": authentications,
        "selected_service": form["service"].value() or (
            str(services[0].public_id) if services else ""
        ),
        "selected_authentication": form["authentication"].value() or "",
        "query_rows": _rows(rows["query"]),
        "header_rows": _rows(rows["header"]),
        "form_rows": _rows(rows["form"]),
        "file_rows": range(MAX_FILES),
        "result": result,
        "pretty_body": pretty_body(result) if result is not None else "",
        "history": _history(membership),
    }  # fmt: skip
    if request.method == "POST" and getattr(request, "htmx", False):
        return render(request, "httpclient/_result_swap.html", context, status=status)
    return render(request, "httpclient/console.html", context, status=status)


@org_member_required
def call_detail(request: HttpRequest, call_id: uuid.UUID) -> HttpResponse:
    """One of the member's own past calls, as recorded (redacted)."""
    membership = request.membership  # type: ignore[attr-defined]
    log = (
        CallLog.objects.filter(
            organization_id=membership.organization_id,
            user_id=membership.user_id,
            public_id=call_id,
        )
        .select_related("service", "authentication")
        .first()
    )
    if log is None:
        raise Http404
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET"])
    body = log.response_body
    try:
        if body and (log.details or {}).get("body_kind") == "json":
            body = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        pass  # a capped excerpt is not whole JSON: show it as stored
    return render(
        request,
        "httpclient/call_detail.html",
        {"log": log, "pretty_body": body, "details": log.details or {}},
    )
