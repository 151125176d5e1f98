"""Export and import of service definitions as JSON documents.

An export never carries a secret; an import is validated exactly like the form (it goes
through service_create) and lands in the importer's personal workspace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from services.auth_methods import REGISTRY
from services.models import Service, Source
from services.services import service_create
from workspaces.models import Membership

IMPORT_NOT_JSON = "This is not a JSON document: {error}."
IMPORT_TOO_LARGE = "The file is larger than {limit} bytes."
IMPORT_NOT_EXPORT = "This is not a traysvc service export (its “format” is not {format})."
IMPORT_FIELD_MISSING = "This field is missing from the export."
IMPORT_FIELD_UNKNOWN = "Unknown field: a service export does not have it."

EXPORT_FORMAT = "traysvc.service"
EXPORT_VERSION = 1
MAX_IMPORT_BYTES = 1_000_000


def service_export(*, service: Service) -> dict[str, Any]:
    """The service as a JSON-ready document, without any secret (they never leave)."""
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "name": service.name,
        "description": service.description,
        "base_url": service.base_url,
        "auth_method": service.auth_method,
        "auth_params": dict(service.auth_params),
        "extra_params": list(service.extra_params),
        "default_headers": dict(service.default_headers),
        "test_request": dict(service.test_request) or None,
        "pagination": dict(service.pagination) or None,
        "endpoints": list(service.endpoints),
        "acknowledge_insecure": service.acknowledged_insecure,
    }


class ServiceDocument(BaseModel):
    """The shape of an export: extra or missing fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid")

    format: str
    version: Literal[1]
    name: str
    description: str = ""
    base_url: str
    auth_method: str
    auth_params: dict[str, Any] = {}
    extra_params: list[Any] = []
    default_headers: dict[str, Any] = {}
    test_request: dict[str, Any] | None = None
    pagination: dict[str, Any] | None = None
    endpoints: list[Any] = []
    acknowledge_insecure: bool = False


def parse_service_document(data: str | bytes | Mapping[str, Any]) -> ServiceDocument:
    """Parse an export (text or already-decoded JSON); raises ValidationError per field."""
    if isinstance(data, str | bytes):
        if len(data) > MAX_IMPORT_BYTES:
            raise ValidationError({"document": IMPORT_TOO_LARGE.format(limit=MAX_IMPORT_BYTES)})
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError({"document": IMPORT_NOT_JSON.format(error=exc)}) from None
    if not isinstance(data, Mapping):
        raise ValidationError({"document": IMPORT_NOT_EXPORT.format(format=EXPORT_FORMAT)})
    if data.get("format") != EXPORT_FORMAT:
        raise ValidationError({"format": IMPORT_NOT_EXPORT.format(format=EXPORT_FORMAT)})
    try:
        return ServiceDocument.model_validate(dict(data))
    except PydanticValidationError as exc:
        errors: dict[str, list[str]] = {}
        for err in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in err["loc"]) or "document"
            message = {"missing": IMPORT_FIELD_MISSING, "extra_forbidden": IMPORT_FIELD_UNKNOWN}
            text = message.get(err["type"], err["msg"])
            if text not in errors.setdefault(loc, []):
                errors[loc].append(text)
        raise ValidationError(errors) from None


@transaction.atomic
def service_import(
    *,
    membership: Membership,
    data: str | bytes | Mapping[str, Any],
    secrets: Mapping[str, str] | None = None,
) -> Service:
    """Create a service from an export in the importer's personal workspace.

    Validated exactly like the form; `secrets` supplies what the export left out (an OAuth
    client secret). Nothing is saved unless everything is valid.
    """
    document = parse_service_document(data)
    auth_params = dict(document.auth_params)
    method = REGISTRY.get(document.auth_method)
    if method is not None:
        for key, value in (secrets or {}).items():
            if key in method.secret_param_keys and value:
                auth_params[key] = value
    return service_create(
        membership=membership, name=document.name, description=document.description,
        base_url=document.base_url, auth_method=document.auth_method, auth_params=auth_params,
        extra_params=document.extra_params, default_headers=document.default_headers,
        test_request=document.test_request, pagination=document.pagination,
        endpoints=document.endpoints, acknowledge_insecure=document.acknowledge_insecure,
        source=Source.IMPORT,
    )  # fmt: skip
