"""The calls API (CONTRACT.md): POST /calls runs a call through the runner; GET /calls lists them.

A call that got any response from the upstream is a 200 here, whatever the upstream's status
(that is in the body). A call refused before sending is 404 (unknown service or
authentication) or 422 (bad input, refused destination, a 307/308 that would resend the body
to another origin); an upstream that could not be reached or broke off is 502, 504 on a
timeout. Every one of them has a call_id: its CallLog.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from pydantic import ConfigDict, Field

from httpclient.models import CallLog, CallSource
from httpclient.runner import Call, Result, UploadedFile, execute

router = Router(tags=["calls"])

FILE_NOT_BASE64 = "content_base64 is not valid base64."
CALL_NOT_FOUND = "Call not found."
MAX_LIMIT = 100

BodyType = Literal["none", "json", "form", "multipart", "raw"]


class FileIn(Schema):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="The multipart field name.")
    filename: str
    content_type: str = "application/octet-stream"
    content_base64: str


class CallIn(Schema):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(description="The service's id (UUID).")
    authentication: str | None = Field(
        None, description="An authentication you may use, made for this service."
    )
    method: str = Field("GET", description="GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS.")
    path: str = Field(
        "/", description="Relative to the service's base URL; a URL on its own host is allowed."
    )
    query: list[list[Any]] | dict[str, Any] | None = Field(
        None, description="Query parameters: ordered [name, value] pairs (repeats kept) or {}."
    )
    headers: dict[str, str] | list[list[str]] | None = None
    body_type: BodyType = "none"
    body: Any = Field(
        None,
        description=(
            "json: any JSON value, or a string holding JSON text (it must parse); "
            "form and multipart: {name: value} or [[name, value], ...]; raw: a string."
        ),
    )
    content_type: str | None = Field(None, description="raw: the body's Content-Type.")
    files: list[FileIn] = Field(default_factory=list, description="multipart: the files.")
    timeout: float | None = Field(None, description="Seconds; capped by the server.")
    follow_redirects: bool = True
    all_pages: bool = Field(False, description="Follow the service's pagination (capped).")


class RetryOut(Schema):
    status: int
    waited_ms: float
    reason: str


class PageOut(Schema):
    url: str
    status: int
    bytes: int
    items: int | None


class RequestOut(Schema):
    method: str
    url: str
    headers: list[list[str]]
    body: str
    body_type: str


class CallOut(Schema):
    call_id: uuid.UUID
    status: int | None
    reason: str
    headers: dict[str, str] = Field(description="Response headers, redacted; repeats joined.")
    header_list: list[list[str]] = Field(description="Response headers as sent, redacted.")
    body: Any = Field(description="Parsed JSON, text, or null (see body_kind).")
    body_base64: str | None = None
    body_kind: Literal["json", "text", "binary", "empty"]
    truncated: bool
    elapsed_ms: float
    ttfb_ms: float | None
    url: str = Field(description="The final URL, without any secret.")
    http_version: str
    attempts: int
    retries: list[RetryOut]
    redirects: list[str]
    pages: list[PageOut]
    notes: list[str]
    request: RequestOut | None
    curl: str = Field(description="The call as a curl command, secrets as <PLACEHOLDERS>.")


class CallErrorOut(Schema):
    detail: str
    errors: dict[str, list[str]]
    call_id: uuid.UUID | None
    error_kind: str
    attempts: int
    elapsed_ms: float
    url: str


class CallLogOut(Schema):
    call_id: uuid.UUID
    created_at: datetime
    source: str
    service: uuid.UUID | None
    authentication: uuid.UUID | None
    method: str
    url: str
    status: int | None
    elapsed_ms: float
    ttfb_ms: float | None
    attempts: int
    truncated: bool
    error: str
    error_kind: str


class CallLogDetailOut(CallLogOut):
    request_headers: list[list[str]]
    request_body: str
    response_headers: list[list[str]]
    response_body: str
    response_bytes: int
    curl: str
    details: dict[str, Any]


EXAMPLES = {
    "get": {
        "summary": "GET with ordered query pairs",
        "value": {
            "service": "6f1c2a4e-8a51-4a8e-9d8e-2f3b7b1f0c11",
            "authentication": "0b8f6a52-5e3d-4c61-a1f4-7d2c9e8b3a20",
            "method": "GET",
            "path": "/users",
            "query": [["per_page", "50"], ["tag", "a"], ["tag", "b"]],
        },
    },
    "json": {
        "summary": "POST a JSON body",
        "value": {
            "service": "6f1c2a4e-8a51-4a8e-9d8e-2f3b7b1f0c11",
            "authentication": "0b8f6a52-5e3d-4c61-a1f4-7d2c9e8b3a20",
            "method": "POST",
            "path": "/issues",
            "headers": {"X-Request-Id": "demo-1"},
            "body_type": "json",
            "body": {"title": "Found a bug", "labels": ["bug"]},
        },
    },
    "multipart": {
        "summary": "Upload a file (multipart)",
        "value": {
            "service": "6f1c2a4e-8a51-4a8e-9d8e-2f3b7b1f0c11",
            "authentication": "0b8f6a52-5e3d-4c61-a1f4-7d2c9e8b3a20",
            "method": "POST",
            "path": "/uploads",
            "body_type": "multipart",
            "body": {"description": "logo"},
            "files": [
                {"field": "file", "filename": "logo.txt", "content_type": "text/plain",
                 "content_base64": "aGVsbG8="}
            ],
        },
    },
    "pages": {
        "summary": "All pages of a list",
        "value": {
            "service": "6f1c2a4e-8a51-4a8e-9d8e-2f3b7b1f0c11",
            "authentication": "0b8f6a52-5e3d-4c61-a1f4-7d2c9e8b3a20",
            "method": "GET",
            "path": "/customers",
            "query": {"limit": "100"},
            "all_pages": True,
        },
    },
}  # fmt: skip
RESPONSE_EXAMPLE = {
    "call_id": "9c0e7a1d-4f52-4b8a-8a3e-1d2c3b4a5f60",
    "status": 200,
    "reason": "OK",
    "headers": {"content-type": "application/json"},
    "header_list": [["content-type", "application/json"]],
    "body": {"id": 1, "login": "octocat"},
    "body_base64": None,
    "body_kind": "json",
    "truncated": False,
    "elapsed_ms": 182.4,
    "ttfb_ms": 180.9,
    "url": "https://api.example.com/users?per_page=50",
    "http_version": "HTTP/2",
    "attempts": 1,
    "retries": [],
    "redirects": [],
    "pages": [],
    "notes": [],
    "request": {
        "method": "GET",
        "url": "https://api.example.com/users?per_page=50",
        "headers": [["Authorization", "Bearer [REDACTED]"]],
        "body": "",
        "body_type": "none",
    },
    "curl": (
        "curl 'https://api.example.com/users?per_page=50' \\\n  -H 'Authorization: Bearer <TOKEN>'"
    ),
}
ERROR_EXAMPLE = {
    "detail": "refused: 169.254.169.254 is a cloud metadata address (169.254.169.254); "
    "set HTTPCLIENT_ALLOW_NETWORKS to allow it",
    "errors": {},
    "call_id": "9c0e7a1d-4f52-4b8a-8a3e-1d2c3b4a5f61",
    "error_kind": "refused",
    "attempts": 1,
    "elapsed_ms": 3.1,
    "url": "http://169.254.169.254/latest/meta-data/",
}


def _files(files: list[FileIn]) -> list[UploadedFile]:
    out = []
    for index, upload in enumerate(files):
        try:
            content = base64.b64decode(upload.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError({f"files.{index}.content_base64": [FILE_NOT_BASE64]}) from None
        out.append(UploadedFile(upload.field, upload.filename, content, upload.content_type))
    return out


def _joined(pairs: list[list[str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def result_payload(result: Result) -> dict[str, Any]:
    """The API's view of a Result (already redacted)."""
    return {
        "call_id": result.call_id,
        "status": result.status,
        "reason": result.reason,
        "headers": _joined(result.headers),
        "header_list": result.headers,
        "body": result.body,
        "body_base64": result.body_base64,
        "body_kind": result.body_kind,
        "truncated": result.truncated,
        "elapsed_ms": round(result.elapsed_ms, 3),
        "ttfb_ms": round(result.ttfb_ms, 3) if result.ttfb_ms is not None else None,
        "url": result.url,
        "http_version": result.http_version,
        "attempts": result.attempts,
        "retries": [r.as_dict() for r in result.retries],
        "redirects": result.redirects,
        "pages": [p.as_dict() for p in result.pages],
        "notes": result.notes,
        "request": result.request.__dict__ if result.request is not None else None,
        "curl": result.curl,
    }


def error_payload(result: Result) -> dict[str, Any]:
    return {
        "detail": result.error,
        "errors": {result.error_field: [result.error]} if result.error_field else {},
        "call_id": result.call_id,
        "error_kind": result.error_kind,
        "attempts": result.attempts,
        "elapsed_ms": round(result.elapsed_ms, 3),
        "url": result.url,
    }


@router.post(
    "/calls",
    response={200: CallOut, 404: CallErrorOut, 422: CallErrorOut, 502: CallErrorOut,
              504: CallErrorOut, 500: CallErrorOut},
    summary="Make a call to a service",
    description=(
        "Runs the request through the runner: templates, the service's auth method, the SSRF "
        "guard, retries (401 refresh for OAuth2, 429/503 Retry-After) and redaction. The "
        "upstream's status is in `status`; this endpoint answers 200 whenever a response came."
    ),
    openapi_extra={
        "requestBody": {"content": {"application/json": {"examples": EXAMPLES}}},
        "responses": {
            200: {"content": {"application/json": {"example": RESPONSE_EXAMPLE}}},
            422: {"content": {"application/json": {"example": ERROR_EXAMPLE}}},
        },
    },
)  # fmt: skip
def call_create(request: HttpRequest, payload: CallIn) -> HttpResponse:
    result = execute(
        Call(
            membership=request.membership,  # type: ignore[attr-defined]
            service=payload.service,
            authentication=payload.authentication,
            method=payload.method,
            path=payload.path,
            query=payload.query or (),
            headers=payload.headers or (),
            body_type=payload.body_type,
            body=payload.body,
            files=_files(payload.files),
            content_type=payload.content_type or "",
            timeout=payload.timeout,
            follow_redirects=payload.follow_redirects,
            all_pages=payload.all_pages,
            source=CallSource.API,
        )
    )
    if result.error:
        return json_response(result.http_status, error_payload(result))
    return json_response(200, result_payload(result))


def json_response(status: int, payload: dict[str, Any]) -> HttpResponse:
    """The payload as ninja would render it, without validating it against the response schema
    again: the runner's Result already has those types (tests hold the payloads to CallOut and
    CallErrorOut), and that second pass over every header and body was ~5 % of a call."""
    return HttpResponse(
        json.dumps(payload, cls=DjangoJSONEncoder),
        status=status,
        content_type="application/json; charset=utf-8",
    )


LIST_FIELDS = {
    "call_id": "public_id",
    "created_at": "created_at",
    "source": "source",
    "service": "service__public_id",
    "authentication": "authentication__public_id",
    "method": "method",
    "url": "url",
    "status": "status",
    "elapsed_ms": "elapsed_ms",
    "ttfb_ms": "ttfb_ms",
    "attempts": "attempts",
    "truncated": "response_truncated",
    "error": "error",
    "error_kind": "error_kind",
}
DETAIL_FIELDS = {
    **LIST_FIELDS,
    **{name: name for name in ("request_headers", "request_body", "response_headers",
                               "response_body", "response_bytes", "curl", "details")},
}  # fmt: skip


def _mine(request: HttpRequest, fields: dict[str, str]) -> list[dict[str, Any]] | Any:
    """The caller's own calls as plain rows (values(): no model instances, two joins for ids)."""
    membership = request.membership  # type: ignore[attr-defined]
    return CallLog.objects.filter(
        organization_id=membership.organization_id, user_id=membership.user_id
    ).values(*fields.values())


def _renamed(row: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    return {key: row[column] for key, column in fields.items()}


class ListParams(Schema):
    limit: int = Field(
        20, ge=1, le=MAX_LIMIT, description=f"How many, newest first (1-{MAX_LIMIT})."
    )


@router.get("/calls", response=list[CallLogOut], summary="Your recent calls, redacted")
def call_list(request: HttpRequest, params: Query[ListParams]) -> list[dict[str, Any]]:
    rows = _mine(request, LIST_FIELDS).order_by("-created_at")[: params.limit]
    return [_renamed(row, LIST_FIELDS) for row in rows]


@router.get("/calls/{call_id}", response=CallLogDetailOut, summary="One of your calls, redacted")
def call_detail(request: HttpRequest, call_id: uuid.UUID) -> dict[str, Any]:
    from django.http import Http404

    rows = list(_mine(request, DETAIL_FIELDS).filter(public_id=call_id)[:1])
    if not rows:
        raise Http404(CALL_NOT_FOUND)
    return _renamed(rows[0], DETAIL_FIELDS)


ROUTERS = [("", router)]
