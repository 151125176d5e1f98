"""OAuth 2.0: authorization code (with PKCE S256) and client credentials grants.

Nothing here does I/O. The grant helpers build the authorize URL and the token requests,
which the authentications code sends through the egress client, and parse what comes back:
token endpoints differ (JSON or form-encoded bodies, ``expires_in`` as a string, no or a
rotated refresh token, scopes as a string or a list), and an error has to say whether the
user must reconnect (``permanent``) or the refresh should just be retried later.
"""

# ruff: noqa: S105 - message constants and field names mention tokens; none is a secret

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from secrets import token_urlsafe
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, quote_plus, urlencode

import httpx
from pydantic import Field, ValidationInfo, field_validator

from .base import (
    AuthApplyError,
    AuthMethod,
    OptionalHeaderName,
    OptionalText,
    OptionalUrl,
    ParamsBase,
    ParamsModel,
    RegistrationText,
    add_error,
    fail,
    param_value,
    place_token,
    placement_check,
    unique,
)

TOKEN_URL_REQUIRED = "OAuth2 needs a token URL"
AUTHORIZE_URL_REQUIRED = "The authorization code grant needs an authorize URL."
CLIENT_SECRET_REQUIRED = "The client credentials grant needs a client secret."
PUBLIC_CLIENT_NEEDS_PKCE = "Without a client secret, the authorization code grant needs PKCE."
PARAM_RESERVED = "These names are set by the grant itself: {names}."
SCOPE_SEPARATOR_INVALID = "Enter a scope separator such as a space or a comma."
SCOPE_INVALID = "A scope must be text without spaces or control characters."
STATUS_CODE_INVALID = "Status codes must be between 400 and 599."
NO_ACCESS_TOKEN = "This authentication has no access token yet: connect it first."
CLIENT_ID_MISSING = "These are a connector's params: a grant needs a service's client id."

TOKEN_HTML = "the token endpoint answered HTML (status {status})"
TOKEN_NOT_A_TOKEN_RESPONSE = (
    "the token endpoint answered something that is not a token response (status {status})"
)
TOKEN_HTTP_ERROR = "the token endpoint answered status {status} without an OAuth error"

AUTHORIZE_RESERVED = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
    }
)
TOKEN_RESERVED = frozenset(
    {
        "grant_type",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "client_id",
        "client_secret",
    }
)
_TEMPORARY_STATUSES = frozenset({408, 409, 423, 425, 429})
_TEMPORARY_CODES = frozenset({"temporarily_unavailable", "server_error", "slow_down"})
_SCOPE_SPLIT = re.compile(r"[\s,]+")
_NUMBER = re.compile(r"^\d+(\.\d+)?$")


class OAuth2Params(ParamsBase):
    """A service's OAuth2 client registration; ``client_secret`` is a secret param.

    Also the shape of a catalog connector's OAuth2 params, which describe the provider only:
    validated with ``CONNECTOR_CONTEXT``, they have no ``client_id`` (None).
    """

    client_id: RegistrationText = None
    grant_type: Literal["authorization_code", "client_credentials"] = "authorization_code"
    authorize_url: OptionalUrl = None
    token_url: OptionalUrl = None
    scope_separator: str = " "  # declared before scopes: the scopes validator reads it
    scopes: list[str] = Field(default_factory=list)
    pkce: bool = True
    token_placement: Literal["bearer", "header", "query"] = "bearer"
    header_name: OptionalHeaderName = None
    prefix: OptionalText = None
    query_name: OptionalText = None
    extra_authorize_params: dict[str, str] = Field(default_factory=dict)
    extra_token_params: dict[str, str] = Field(default_factory=dict)
    token_endpoint_auth: Literal["basic", "body"] = "basic"  # RFC 6749 §2.3.1
    expired_status_codes: list[int] = Field(default_factory=lambda: [401])
    revoke_url: OptionalUrl = None
    audience: OptionalText = None

    @field_validator("scope_separator", mode="before")
    @classmethod
    def _separator(cls, value: Any) -> Any:
        if value is None or value == "":
            return " "
        if isinstance(value, str) and (len(value) > 3 or any(c.isalnum() for c in value)):
            fail(SCOPE_SEPARATOR_INVALID)
        return value

    @field_validator("scopes", mode="before")
    @classmethod
    def _scopes(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            separator = info.data.get("scope_separator", " ")
            value = value.split() if separator.isspace() else value.split(separator)
        if isinstance(value, list):
            value = [s.strip() if isinstance(s, str) else s for s in value]
            value = [s for s in value if s != ""]
            if any(isinstance(s, str) and re.search(r"[\s\x00-\x1f\x7f]", s) for s in value):
                fail(SCOPE_INVALID)
        return value

    @field_validator("expired_status_codes", mode="before")
    @classmethod
    def _codes_from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            return parts or [401]
        return value

    @field_validator("expired_status_codes")
    @classmethod
    def _codes_in_range(cls, value: list[int]) -> list[int]:
        if any(not 400 <= code <= 599 for code in value):
            fail(STATUS_CODE_INVALID)
        return value


class OAuth2Method(AuthMethod):
    """Access token from a grant, applied as Bearer, a custom header or a query parameter."""

    key = "oauth2"
    label = "OAuth 2.0"
    params_model = OAuth2Params
    secret_param_keys = ("client_secret",)
    credential_fields = []  # everything comes from the grant
    stored_secret_keys = ("access_token", "refresh_token", "id_token")

    def check_params(self, model: ParamsModel) -> tuple[ParamsModel, dict[str, list[str]]]:
        assert isinstance(model, OAuth2Params)  # noqa: S101 - narrowing
        model, errors = placement_check(model, model.token_placement)
        assert isinstance(model, OAuth2Params)  # noqa: S101
        if not model.token_url:
            add_error(errors, "token_url", TOKEN_URL_REQUIRED)
        if model.grant_type == "authorization_code" and not model.authorize_url:
            add_error(errors, "authorize_url", AUTHORIZE_URL_REQUIRED)
        for name, given, reserved in (
            ("extra_authorize_params", model.extra_authorize_params, AUTHORIZE_RESERVED),
            ("extra_token_params", model.extra_token_params, TOKEN_RESERVED),
        ):
            clash = sorted(set(given) & reserved)
            if clash:
                add_error(errors, name, PARAM_RESERVED.format(names=", ".join(clash)))
        return model, errors

    def check_secrets(self, model: ParamsModel, secrets: Mapping[str, str]) -> dict[str, list[str]]:
        assert isinstance(model, OAuth2Params)  # noqa: S101
        if secrets.get("client_secret"):
            return {}
        if model.grant_type == "client_credentials":
            return {"client_secret": [CLIENT_SECRET_REQUIRED]}
        if not model.pkce:
            return {"pkce": [PUBLIC_CLIENT_NEEDS_PKCE]}
        return {}

    def apply(
        self, request: httpx.Request, *, params: ParamsModel, secrets: Mapping[str, str]
    ) -> httpx.Request:
        assert isinstance(params, OAuth2Params)  # noqa: S101
        token = secrets.get("access_token")
        if not token:
            raise AuthApplyError(NO_ACCESS_TOKEN)
        place_token(
            request,
            token,
            placement=params.token_placement,
            header_name=params.header_name,
            prefix=params.prefix,
            query_name=params.query_name,
        )
        return request

    def secret_values(
        self, params: ParamsModel | Mapping[str, Any], secrets: Mapping[str, str]
    ) -> list[str]:
        values: list[str | None] = list(super().secret_values(params, secrets))
        token = secrets.get("access_token")
        if token:
            values.append(quote(token, safe=""))
        client_secret = secrets.get("client_secret")
        if client_secret:
            client_id = str(param_value(params, "client_id") or "")
            header = client_basic_header(client_id, client_secret)
            values += [header, header.removeprefix("Basic "), quote_plus(client_secret)]
        return unique(values)

    def is_expired_response(
        self, params: ParamsModel | Mapping[str, Any], status_code: int
    ) -> bool:
        return is_expired_response(self.parse_params(params), status_code)  # type: ignore[arg-type]


METHOD = OAuth2Method()


def is_expired_response(params: OAuth2Params, status_code: int) -> bool:
    """A call answered with one of these statuses gets one refresh and one retry."""
    return status_code in params.expired_status_codes


# ---- PKCE (RFC 7636) ------------------------------------------------------------------------


def pkce_challenge(verifier: str) -> str:
    """S256: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_pair() -> tuple[str, str]:
    """A fresh (verifier, challenge); the verifier is 86 unreserved characters."""
    verifier = token_urlsafe(64)
    return verifier, pkce_challenge(verifier)


# ---- requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRequest:
    """A form POST to the token endpoint, ready for the egress client."""

    url: str
    headers: dict[str, str] = field(repr=False)
    data: dict[str, str] = field(repr=False)


def client_basic_header(client_id: str, client_secret: str) -> str:
    """RFC 6749 §2.3.1: form-encode id and secret, then HTTP Basic."""
    raw = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _client_id(params: OAuth2Params) -> str:
    if not params.client_id:
        raise ValueError(CLIENT_ID_MISSING)
    return params.client_id


def build_authorize_url(
    params: OAuth2Params,
    *,
    redirect_uri: str,
    state: str,
    code_challenge: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> str:
    """Where to send the user's browser to start the authorization code grant."""
    if not params.authorize_url:
        raise ValueError(AUTHORIZE_URL_REQUIRED)
    query: dict[str, str] = {
        "response_type": "code",
        "client_id": _client_id(params),
        "redirect_uri": redirect_uri,
    }
    if params.scopes:
        query["scope"] = params.scope_separator.join(params.scopes)
    query["state"] = state
    if code_challenge:
        query["code_challenge"] = code_challenge
        query["code_challenge_method"] = "S256"
    if params.audience:
        query["audience"] = params.audience
    query.update(params.extra_authorize_params)
    clash = sorted(set(extra or {}) & AUTHORIZE_RESERVED)
    if clash:
        raise ValueError(PARAM_RESERVED.format(names=", ".join(clash)))
    query.update(extra or {})
    url = params.authorize_url
    joiner = "" if url.endswith(("?", "&")) else ("&" if "?" in url else "?")
    return url + joiner + urlencode(query, quote_via=quote)


def _token_request(
    params: OAuth2Params, client_secret: str | None, data: dict[str, str]
) -> TokenRequest:
    if not params.token_url:
        raise ValueError(TOKEN_URL_REQUIRED)
    data = {**params.extra_token_params, **data}
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    client_id = _client_id(params)
    if client_secret and params.token_endpoint_auth == "basic":
        headers["Authorization"] = client_basic_header(client_id, client_secret)
    else:
        data["client_id"] = client_id
        if client_secret:
            data["client_secret"] = client_secret
    return TokenRequest(url=params.token_url, headers=headers, data=data)


def token_request_for_code(
    params: OAuth2Params,
    *,
    client_secret: str | None,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
) -> TokenRequest:
    """Exchange the callback's code (and the PKCE verifier) for tokens."""
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        data["code_verifier"] = code_verifier
    return _token_request(params, client_secret, data)


def token_request_for_refresh(
    params: OAuth2Params, *, client_secret: str | None, refresh_token: str
) -> TokenRequest:
    """Refresh; no scope is sent, so the grant keeps the scopes it has."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return _token_request(params, client_secret, data)


def token_request_for_client_credentials(
    params: OAuth2Params, *, client_secret: str | None
) -> TokenRequest:
    """Machine-to-machine grant: the service's own credentials, no user."""
    data = {"grant_type": "client_credentials"}
    if params.scopes:
        data["scope"] = params.scope_separator.join(params.scopes)
    if params.audience:
        data["audience"] = params.audience
    return _token_request(params, client_secret, data)


# ---- responses ------------------------------------------------------------------------------


class TokenError(Exception):
    """The token endpoint refused or answered nonsense.

    ``permanent`` means the grant is dead (needs re-authorization, e.g. ``invalid_grant``);
    otherwise retry later (provider down, rate limited, a proxy's HTML page).
    """

    def __init__(
        self, code: str, description: str, *, permanent: bool, status: int | None = None
    ) -> None:
        super().__init__(description or code)
        self.code = code
        self.description = description
        self.permanent = permanent
        self.status = status


@dataclass(frozen=True)
class TokenResult:
    """A successful token response, normalised. ``scopes`` is None when the body had none."""

    access_token: str = field(repr=False)
    token_type: str
    refresh_token: str | None = field(repr=False)
    expires_in: int | None
    expires_at: datetime | None
    refresh_expires_at: datetime | None
    scopes: list[str] | None
    id_token: str | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)


def _is_permanent(status: int, code: str | None) -> bool:
    if code in _TEMPORARY_CODES or status >= 500 or status in _TEMPORARY_STATUSES:
        return False
    return 400 <= status < 500 or code is not None


def _seconds(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if value >= 0 else None
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return int(float(value.strip()))
    return None


_HTML = object()


def _decode(content_type: str, body: bytes) -> dict[str, Any] | object | None:
    text = body.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("text/html", "application/xhtml+xml") or text.startswith("<"):
        return _HTML
    if media == "application/json" or media.endswith("+json") or text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None
    if media in ("application/x-www-form-urlencoded", "text/plain", ""):
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            return None
        return dict(pairs) or None
    return None


def _error_of(data: dict[str, Any]) -> tuple[str, str] | None:
    error = data.get("error")
    if error is None or error == "":
        return None
    if isinstance(error, dict):  # {"error": {"type"|"code": ..., "message": ...}}
        code = error.get("type") or error.get("code") or "error"
        return str(code), str(error.get("message") or "")
    return str(error), str(data.get("error_description") or "")


def parse_token_response(
    status: int, content_type: str, body: bytes, *, now: datetime
) -> TokenResult:
    """Normalise a token endpoint's answer or raise TokenError. ``now`` must be aware."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    data = _decode(content_type or "", body)
    if data is _HTML:
        raise TokenError(
            "invalid_response", TOKEN_HTML.format(status=status), permanent=False, status=status
        )
    if not isinstance(data, dict):
        message = TOKEN_NOT_A_TOKEN_RESPONSE.format(status=status)
        raise TokenError("invalid_response", message, permanent=False, status=status)
    error = _error_of(data)
    if error is not None:
        code, description = error
        raise TokenError(code, description, permanent=_is_permanent(status, code), status=status)
    if not 200 <= status < 300:
        message = TOKEN_HTTP_ERROR.format(status=status)
        raise TokenError(
            "http_error", message, permanent=_is_permanent(status, None), status=status
        )
    access_token = data.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        message = TOKEN_NOT_A_TOKEN_RESPONSE.format(status=status)
        raise TokenError("invalid_response", message, permanent=False, status=status)
    expires_in = _seconds(data.get("expires_in"))
    refresh_in = _seconds(data.get("refresh_token_expires_in", data.get("refresh_expires_in")))
    if refresh_in == 0:  # Keycloak's offline tokens: 0 means "does not expire"
        refresh_in = None
    refresh_token = data.get("refresh_token")
    scope = data.get("scope", data.get("scopes"))
    if isinstance(scope, str):
        scopes: list[str] | None = [s for s in _SCOPE_SPLIT.split(scope) if s]
    elif isinstance(scope, list):
        scopes = [str(s) for s in scope if str(s).strip()]
    else:
        scopes = None
    token_type = data.get("token_type")
    id_token = data.get("id_token")
    known = {
        "access_token",
        "token_type",
        "refresh_token",
        "expires_in",
        "refresh_token_expires_in",
        "refresh_expires_in",
        "scope",
        "scopes",
        "id_token",
    }
    return TokenResult(
        access_token=access_token,
        token_type=token_type.lower() if isinstance(token_type, str) and token_type else "bearer",
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        expires_in=expires_in,
        expires_at=now + timedelta(seconds=expires_in) if expires_in is not None else None,
        refresh_expires_at=now + timedelta(seconds=refresh_in) if refresh_in is not None else None,
        scopes=scopes,
        id_token=id_token if isinstance(id_token, str) and id_token else None,
        extra={k: v for k, v in data.items() if k not in known},
    )
