"""The JSON API at /api/v1/: one NinjaAPI, routers from each app, errors in one shape."""

from __future__ import annotations

import json

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser

from workspaces.api_auth import ApiKeyAuth, RateLimited

NOT_FOUND = "Not found: there is no such object in your organization, or you may not use it."
FORBIDDEN = "Your role in this organization may read this but not change it."
NUL_IN_BODY = "Text in the request body may not contain NUL characters (\\u0000)."


class NulInBody(ValueError):
    """A JSON body with a NUL in a string: no database stores one (PostgreSQL refuses it)."""

    def __init__(self, field: str) -> None:
        super().__init__(NUL_IN_BODY)
        self.field = field


def _find_nul(value: object, field: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise NulInBody(field)
    elif isinstance(value, dict):
        for key, item in value.items():
            _find_nul(key, field or str(key))
            _find_nul(item, field or str(key))
    elif isinstance(value, list):
        for item in value:
            _find_nul(item, field)


class StrictJSONParser(Parser):
    """Refuse NULs at the door, naming the top-level field, instead of failing at the database."""

    def parse_body(self, request: HttpRequest) -> dict:
        data = json.loads(request.body)
        _find_nul(data, "")
        return data


api = NinjaAPI(
    parser=StrictJSONParser(),
    title="traysvc API",
    version="1",
    urls_namespace="api",
    auth=ApiKeyAuth(),
    docs_url="/docs",
    openapi_url="/openapi.json",
    description=(
        "Custom services, authentications and calls. Authenticate with "
        "`Authorization: Bearer <api key>`; create keys on your API keys page or with "
        "`manage.py createapikey`. Errors are `{detail, errors: {field: [messages]}}`."
    ),
)


def error(
    request: HttpRequest, status: int, detail: str, errors: dict | None = None
) -> HttpResponse:
    return api.create_response(request, {"detail": detail, "errors": errors or {}}, status=status)


def _ninja_errors(exc: NinjaValidationError) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in exc.errors:
        loc = [str(p) for p in item.get("loc", []) if p not in ("body", "payload", "query", "path")]
        out.setdefault(".".join(loc) or "__all__", []).append(item.get("msg", "invalid"))
    return out


@api.exception_handler(NinjaValidationError)
def _on_schema_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    return error(request, 422, "The request body or parameters are not valid.", _ninja_errors(exc))


@api.exception_handler(ValidationError)
def _on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    if hasattr(exc, "error_dict"):
        errors = {k: [m for e in v for m in e.messages] for k, v in exc.error_dict.items()}
        detail = "; ".join(v[0] if k == "__all__" else f"{k}: {v[0]}" for k, v in errors.items())
    else:
        errors = {"__all__": exc.messages}
        detail = "; ".join(exc.messages)
    return error(request, 422, detail, errors)


@api.exception_handler(Http404)
def _on_404(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error(request, 404, NOT_FOUND)


@api.exception_handler(PermissionDenied)
def _on_403(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return error(request, 403, str(exc) or FORBIDDEN)


@api.exception_handler(AuthenticationError)
def _on_401(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = error(
        request, 401, "Missing or invalid API key: send `Authorization: Bearer <api key>`."
    )
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(RateLimited)
def _on_429(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    response = error(request, 429, str(exc))
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(HttpError)
def _on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, NulInBody):
        field = exc.__cause__.field or "__all__"
        body = {"detail": NUL_IN_BODY, "errors": {field: [NUL_IN_BODY]}, "error_kind": "invalid"}
        return api.create_response(request, body, status=422)
    return error(request, exc.status_code, str(exc))


def _mount_routers() -> None:
    """Each app contributes a router module when it has one (composition root, like urls.py)."""
    import importlib

    for module_name in ("services.api", "services.api_authentications", "httpclient.api"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        for prefix, router in getattr(module, "ROUTERS", []):
            api.add_router(prefix, router)


_mount_routers()
