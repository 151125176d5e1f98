"""The auth-method interface: what every method in the registry provides.

A method validates a service's auth params and an authentication's credential values, and
applies a credential to an outgoing ``httpx.Request``. Everything here works on plain data
(dicts, pydantic models, httpx requests) so the Service model, forms, the API and the runner
can all use it without this package importing Django.

The runner makes one call per request::

    request, auth = method.prepare(request, params=params, secrets=secrets)
    client.send(request, auth=auth)

where ``secrets`` is the authentication's credential values (secret or not: ``username``
travels with ``password``) merged with the service's secret params (``client_secret`` ...).
"""

# ruff: noqa: S105 - message constants and field names mention tokens; none is a secret

from __future__ import annotations

import base64
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, NoReturn, get_args, get_origin
from urllib.parse import quote, unquote_plus, urlsplit

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

NON_FIELD = "__all__"

FIELD_REQUIRED = "This field is required."
UNKNOWN_PARAM = "Unknown parameter."
INVALID_CHOICE = "Choose one of: {choices}."
EXPECTED_TEXT = "Enter text."
EXPECTED_BOOLEAN = "Enter true or false."
EXPECTED_INTEGER = "Enter a whole number."
EXPECTED_LIST = "Enter a list."
EXPECTED_MAPPING = "Enter an object mapping names to text values."
INVALID_VALUE = "Enter a valid value."
PARAMS_NOT_OBJECT = "Auth parameters must be an object of names to values."
CREDENTIALS_NOT_OBJECT = "Credential values must be an object of names to values."
ACK_REQUIRED = "This method is discouraged: confirm that you accept the risk to use it."
CONTROL_CHARS = "This value must not contain line breaks or control characters."
TOKEN_NOT_PRINTABLE = "A token may only contain printable ASCII characters."
HEADER_NAME_INVALID = "A header name may only contain letters, digits and !#$%&'*+-.^_`|~."
HEADER_NAME_RESERVED = "This header is managed by the HTTP client and cannot carry a credential."
HEADER_NAME_REQUIRED = "A custom header placement needs a header name."
QUERY_NAME_REQUIRED = "A query parameter placement needs a parameter name."
URL_INVALID = "Enter an http:// or https:// URL with a host name."
URL_HAS_CREDENTIALS = "A URL must not contain a user name or password."
URL_HAS_FRAGMENT = "A URL must not contain a #fragment."
MISSING_CREDENTIAL = "This authentication has no {label}: edit it and enter one."
REGISTRATION_IN_CONNECTOR = (
    "A catalog connector describes the provider only: each service enters its own value."
)

# Validation context for a catalog connector's auth params (read-only; pydantic passes it on).
# A connector describes the provider; the service made from it adds its own registration
# (OAuth client id, consumer key), so registration fields must be absent instead of required.
CONNECTOR_CONTEXT: Mapping[str, bool] = types.MappingProxyType({"connector": True})

_CUSTOM = "traysvc"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TCHAR = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]+$")
_TEMPLATE = re.compile(r"\{\{\s*(?:auth|service)\.[A-Za-z0-9_]+\s*\}\}")
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "te", "upgrade"}
)


class AuthParamsError(Exception):
    """Invalid service params or credential values: field -> user-facing messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors

    def __str__(self) -> str:
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in self.errors.items())


class AuthApplyError(Exception):
    """A credential cannot be applied to this request; the message is for the user."""


@dataclass(frozen=True)
class CredentialField:
    """One value an authentication of a method asks the user for."""

    key: str
    label: str
    secret: bool
    required: bool
    help: str = ""
    strip: bool = True  # passwords keep their spaces; tokens and names lose pasted whitespace


class ParamsBase(BaseModel):
    """Base of every params model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EmptyParams(ParamsBase):
    """For methods without service params (none, basic, digest)."""


def fail(message: str) -> NoReturn:
    """Raise inside a pydantic validator with one of our message constants."""
    raise PydanticCustomError(_CUSTOM, message)


def _text(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if _CONTROL.search(value):
            fail(CONTROL_CHARS)
    return value


def _optional_text(value: Any) -> Any:
    value = _text(value)
    return None if value == "" else value


def _required_text(value: Any) -> Any:
    value = _text(value)
    if value is None or value == "":
        fail(FIELD_REQUIRED)
    return value


def _header_name(value: str | None) -> str | None:
    if value is None:
        return None
    if not _TCHAR.match(value):
        fail(HEADER_NAME_INVALID)
    if value.lower() in _RESERVED_HEADERS:
        fail(HEADER_NAME_RESERVED)
    return value


def check_url(value: str | None) -> str | None:
    """http(s) with a host, no userinfo, no fragment; ``{{service.x}}`` placeholders allowed."""
    if value is None:
        return None
    probe = _TEMPLATE.sub("x", value)
    try:
        parts = urlsplit(probe)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        fail(URL_INVALID)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        fail(URL_INVALID)
    if any(ch.isspace() for ch in probe) or "{" in probe or "}" in probe:
        fail(URL_INVALID)
    if "@" in parts.netloc:
        fail(URL_HAS_CREDENTIALS)
    if "#" in probe:
        fail(URL_HAS_FRAGMENT)
    return value


def _registration(value: str | None, info: ValidationInfo) -> str | None:
    connector = bool(info.context and info.context.get("connector"))
    if connector and value is not None:
        fail(REGISTRATION_IN_CONNECTOR)
    if not connector and value is None:
        fail(FIELD_REQUIRED)
    return value


RequiredText = Annotated[str, BeforeValidator(_required_text)]
# The service's own registration with the provider (OAuth client id): required on a service,
# absent from a catalog connector (validated with CONNECTOR_CONTEXT). None only in a connector.
RegistrationText = Annotated[
    str | None,
    BeforeValidator(_optional_text),
    AfterValidator(_registration),
    Field(validate_default=True),
]
OptionalText = Annotated[str | None, BeforeValidator(_optional_text)]
OptionalHeaderName = Annotated[
    str | None, BeforeValidator(_optional_text), AfterValidator(_header_name)
]
OptionalUrl = Annotated[str | None, BeforeValidator(_optional_text), AfterValidator(check_url)]

_TYPE_MESSAGES = {
    "missing": FIELD_REQUIRED,
    "extra_forbidden": UNKNOWN_PARAM,
    "string_type": EXPECTED_TEXT,
    "bool_type": EXPECTED_BOOLEAN,
    "bool_parsing": EXPECTED_BOOLEAN,
    "int_type": EXPECTED_INTEGER,
    "int_parsing": EXPECTED_INTEGER,
    "int_from_float": EXPECTED_INTEGER,
    "list_type": EXPECTED_LIST,
    "dict_type": EXPECTED_MAPPING,
}


def add_error(errors: dict[str, list[str]], field: str, message: str) -> None:
    """Append a message once per field."""
    messages = errors.setdefault(field, [])
    if message not in messages:
        messages.append(message)


def _choices(model: type[BaseModel], field: str) -> list[str]:
    info = model.model_fields.get(field)
    if info is None:
        return []
    pending = [info.annotation]
    while pending:
        tp = pending.pop()
        if get_origin(tp) is Literal:
            return [str(arg) for arg in get_args(tp)]
        pending.extend(get_args(tp))
    return []


def errors_from_validation(exc: ValidationError, model: type[BaseModel]) -> dict[str, list[str]]:
    """Turn pydantic's errors into field -> our message constants (never pydantic's words)."""
    errors: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = err["loc"]
        field = str(loc[0]) if loc else NON_FIELD
        if err["type"] == _CUSTOM:
            message = err["msg"]
        elif err["type"] == "literal_error":
            message = INVALID_CHOICE.format(choices=", ".join(_choices(model, field)))
        else:
            message = _TYPE_MESSAGES.get(err["type"], INVALID_VALUE)
        add_error(errors, field, message)
    return errors


# ---- applying credentials -------------------------------------------------------------------


def basic_header_value(username: str, password: str) -> str:
    """RFC 7617 Basic credentials, UTF-8."""
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def append_query_param(request: httpx.Request, name: str, value: str) -> None:
    """Add ``name=value`` after the existing pairs, keeping their order and raw encoding.

    Pairs already named ``name`` are dropped so the credential is sent exactly once.
    """
    raw = request.url.query
    pairs = [p for p in raw.split(b"&") if p] if raw else []
    kept = [p for p in pairs if unquote_plus(p.split(b"=", 1)[0].decode("latin-1")) != name]
    kept.append(f"{quote(name, safe='')}={quote(value, safe='')}".encode("ascii"))
    request.url = request.url.copy_with(query=b"&".join(kept))


Placement = Literal["bearer", "header", "query", "basic"]


def place_token(
    request: httpx.Request,
    token: str,
    *,
    placement: str,
    header_name: str | None = None,
    prefix: str | None = None,
    query_name: str | None = None,
) -> None:
    """Put a token where the service expects it (Bearer, custom header, query, Basic)."""
    if placement == "bearer":
        request.headers["Authorization"] = f"Bearer {token}"
    elif placement == "header":
        if not header_name:
            raise AuthApplyError(HEADER_NAME_REQUIRED)
        request.headers[header_name] = f"{prefix} {token}" if prefix else token
    elif placement == "query":
        if not query_name:
            raise AuthApplyError(QUERY_NAME_REQUIRED)
        append_query_param(request, query_name, token)
    elif placement == "basic":
        request.headers["Authorization"] = basic_header_value(token, "")
    else:  # pragma: no cover - the params model only admits the four above
        raise AuthApplyError(INVALID_CHOICE.format(choices="bearer, header, query, basic"))


def placement_check(model: ParamsModel, placement: str) -> tuple[ParamsModel, dict[str, list[str]]]:
    """Require header_name / query_name for their placement; clear fields that do not apply."""
    errors: dict[str, list[str]] = {}
    updates: dict[str, Any] = {}
    if placement == "header":
        if not model.header_name:  # type: ignore[attr-defined]
            add_error(errors, "header_name", HEADER_NAME_REQUIRED)
    else:
        updates.update(header_name=None, prefix=None)
    if placement == "query":
        if not model.query_name:  # type: ignore[attr-defined]
            add_error(errors, "query_name", QUERY_NAME_REQUIRED)
    else:
        updates["query_name"] = None
    return model.model_copy(update=updates), errors


def token_secret_values(token: str) -> list[str]:
    """The token and every encoded form of it that can show up in a logged request.

    Independent of the placement, so redaction never depends on params being valid.
    """
    header = basic_header_value(token, "")
    return unique([token, quote(token, safe=""), header, header.removeprefix("Basic ")])


def param_value(params: ParamsBase | Mapping[str, Any], name: str) -> Any:
    """Read a param from a model or a raw mapping without validating (for redaction)."""
    if isinstance(params, Mapping):
        return params.get(name)
    return getattr(params, name, None)


def request_body(request: httpx.Request) -> bytes:
    """The request's body bytes, reading a (sync) stream first when needed."""
    try:
        return request.content
    except httpx.RequestNotRead:
        return request.read()


def require_secret(secrets: Mapping[str, str], key: str, label: str) -> str:
    """A credential value the method cannot work without."""
    value = secrets.get(key)
    if not value:
        raise AuthApplyError(MISSING_CREDENTIAL.format(label=label))
    return value


def unique(values: list[str | None]) -> list[str]:
    """Non-empty values, first occurrence kept: what redaction needs."""
    seen: dict[str, None] = {}
    for value in values:
        if value:
            seen.setdefault(value, None)
    return list(seen)


# ---- the interface ---------------------------------------------------------------------------

ParamsModel = ParamsBase


class AuthMethod:
    """One way of authenticating calls; subclasses set the class attributes and hooks."""

    key: ClassVar[str]
    label: ClassVar[str]
    discouraged: ClassVar[bool] = False
    discouraged_reason: ClassVar[str] = ""
    params_model: ClassVar[type[ParamsBase]] = EmptyParams
    secret_param_keys: ClassVar[tuple[str, ...]] = ()
    credential_fields: ClassVar[list[CredentialField]] = []
    # Secrets the method stores on the authentication itself (OAuth2 grant tokens).
    stored_secret_keys: ClassVar[tuple[str, ...]] = ()
    # True when the runner must resolve a connector and use its method instead (preexisting).
    uses_connector: ClassVar[bool] = False

    @property
    def credential_secret_keys(self) -> tuple[str, ...]:
        """Authentication values to keep in the encrypted blob."""
        own = tuple(f.key for f in self.credential_fields if f.secret)
        return own + self.stored_secret_keys

    def __repr__(self) -> str:
        return f"<AuthMethod {self.key}>"

    # -- service params --

    def split_params(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(non-secret params, secret params); the caller encrypts the second part."""
        public = {k: v for k, v in params.items() if k not in self.secret_param_keys}
        secret = {k: v for k, v in params.items() if k in self.secret_param_keys}
        return public, secret

    def validate_service_params(
        self,
        params: Mapping[str, Any],
        *,
        acknowledge_insecure: bool = False,
        existing_secrets: Mapping[str, str] | None = None,
    ) -> ParamsModel:
        """Validate a service's auth params (secret ones included); return the non-secret model.

        ``existing_secrets`` are the stored secret params of the service being edited: a blank
        secret in the form means "keep it", so requirement checks see the stored value.
        """
        if not isinstance(params, Mapping):
            raise AuthParamsError({NON_FIELD: [PARAMS_NOT_OBJECT]})
        public, secret = self.split_params(params)
        errors: dict[str, list[str]] = {}
        if self.discouraged and acknowledge_insecure is not True:
            add_error(errors, "acknowledge_insecure", ACK_REQUIRED)
        effective = {k: v for k, v in (existing_secrets or {}).items() if v}
        for k, v in secret.items():
            if v is None or v == "":
                continue
            if not isinstance(v, str):
                add_error(errors, k, EXPECTED_TEXT)
            else:
                effective[k] = v
        model = None
        failed: set[str] = set()
        try:
            model = self.params_model.model_validate(public)
        except ValidationError as exc:
            for field, messages in errors_from_validation(exc, self.params_model).items():
                failed.add(field)
                for message in messages:
                    add_error(errors, field, message)
            # Run the cross-field checks on the valid rest, so one round shows every error.
            rest = {k: v for k, v in public.items() if k not in failed}
            try:
                model = self.params_model.model_validate(rest)
            except ValidationError:
                model = None
        if model is not None:
            model, more = self.check_params(model)
            more.update(self.check_secrets(model, effective))
            for field, messages in more.items():
                if field not in failed:
                    for message in messages:
                        add_error(errors, field, message)
        if errors or model is None:
            raise AuthParamsError(errors)
        return model

    def parse_params(
        self, data: Mapping[str, Any] | ParamsBase, *, connector: bool = False
    ) -> ParamsModel:
        """Load stored (already validated) params into the model; used by the runner.

        ``connector=True`` reads a catalog connector's params, which have no registration
        fields (client id): what a pre-existing service applies.
        """
        if isinstance(data, self.params_model):
            return data
        if not isinstance(data, Mapping):
            raise AuthParamsError({NON_FIELD: [PARAMS_NOT_OBJECT]})
        context = CONNECTOR_CONTEXT if connector else None
        try:
            model = self.params_model.model_validate(dict(data), context=context)
        except ValidationError as exc:
            raise AuthParamsError(errors_from_validation(exc, self.params_model)) from exc
        model, errors = self.check_params(model)
        if errors:
            raise AuthParamsError(errors)
        return model

    def check_params(self, model: ParamsModel) -> tuple[ParamsModel, dict[str, list[str]]]:
        """Cross-field checks and normalisation of the non-secret params."""
        return model, {}

    def check_secrets(self, model: ParamsModel, secrets: Mapping[str, str]) -> dict[str, list[str]]:
        """Checks of the secret params against the (valid) non-secret ones."""
        return {}

    # -- credentials --

    def validate_credentials(self, values: Mapping[str, Any]) -> dict[str, str]:
        """Clean an authentication's values; returns only this method's fields.

        Other keys (the service's extra param values) are left to the caller.
        """
        if not isinstance(values, Mapping):
            raise AuthParamsError({NON_FIELD: [CREDENTIALS_NOT_OBJECT]})
        errors: dict[str, list[str]] = {}
        cleaned: dict[str, str] = {}
        for spec in self.credential_fields:
            raw = values.get(spec.key)
            if raw is not None and not isinstance(raw, str):
                add_error(errors, spec.key, EXPECTED_TEXT)
                continue
            value = (raw or "").strip() if spec.strip else (raw or "")
            if not value:
                if spec.required:
                    add_error(errors, spec.key, FIELD_REQUIRED)
                continue
            if _CONTROL.search(value):
                add_error(errors, spec.key, CONTROL_CHARS)
                continue
            cleaned[spec.key] = value
        if not errors:
            errors = self.check_credentials(cleaned)
        if errors:
            raise AuthParamsError(errors)
        return cleaned

    def check_credentials(self, values: dict[str, str]) -> dict[str, list[str]]:
        """Method-specific checks of cleaned credential values."""
        return {}

    # -- applying --

    def prepare(
        self,
        request: httpx.Request,
        *,
        params: ParamsModel | Mapping[str, Any],
        secrets: Mapping[str, str],
    ) -> tuple[httpx.Request, httpx.Auth | None]:
        """The one call the runner makes: the request to send and the httpx auth flow, if any.

        Raises AuthApplyError when the credential cannot be applied.
        """
        model = self.parse_params(params)
        request = self.apply(request, params=model, secrets=secrets)
        return request, self.auth_for(model, secrets)

    def apply(
        self, request: httpx.Request, *, params: ParamsModel, secrets: Mapping[str, str]
    ) -> httpx.Request:
        """Add the credential to the request (headers, query, body); may modify it in place."""
        return request

    def auth_for(self, params: ParamsModel, secrets: Mapping[str, str]) -> httpx.Auth | None:
        """An httpx.Auth flow for methods that need a challenge round trip (digest)."""
        return None

    def secret_values(
        self, params: ParamsModel | Mapping[str, Any], secrets: Mapping[str, str]
    ) -> list[str]:
        """Every value to redact from logs: by default the secret credentials and params."""
        keys = self.credential_secret_keys + self.secret_param_keys
        return unique([secrets.get(k) for k in keys])

    def is_expired_response(
        self, params: ParamsModel | Mapping[str, Any], status_code: int
    ) -> bool:
        """Does this response status mean "refresh the credential and retry once"?"""
        return False


def check_token_chars(values: dict[str, str], key: str) -> dict[str, list[str]]:
    """Tokens go into headers and URLs: printable ASCII only."""
    value = values.get(key)
    if value is not None and not _PRINTABLE_ASCII.match(value):
        return {key: [TOKEN_NOT_PRINTABLE]}
    return {}
