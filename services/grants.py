"""OAuth2 grants on the wire and at rest: the client registration a target uses, sending
token requests through traysvc.egress (with the sandbox's narrow SSRF exemption), storing a
token response on an authentication, the grant's healthy status, and revocation (RFC 7009).

services.oauth (the flows) and services.refresh (the locked refresh) are built on these.
"""

# ruff: noqa: S105 - message constants mention tokens; none is a secret

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.utils import timezone

from services import templating
from services.auth_methods.base import NON_FIELD, AuthParamsError
from services.auth_methods.base import check_url as check_auth_url
from services.auth_methods.oauth2 import METHOD as OAUTH2
from services.auth_methods.oauth2 import (
    OAuth2Params,
    TokenRequest,
    TokenResult,
    client_basic_header,
    parse_token_response,
)
from services.authentications import Target, target_of
from services.models import Authentication, AuthStatus, Service, Source
from traysvc import egress
from traysvc.egress.sandbox import sandbox_exemption

logger = logging.getLogger(__name__)

MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024

NOT_OAUTH2 = "This service does not use OAuth2."
CONNECTOR_NEEDS_CLIENT = (
    "To connect {name} with OAuth2, first add it as a service from the catalog with your OAuth "
    "app's client id and client secret."
)
SERVICE_MISCONFIGURED = "This service's OAuth2 settings are incomplete: {problems}"
ENDPOINT_TEMPLATE = "The OAuth2 {field} cannot be built: {problem}"
ENDPOINT_INVALID = "The OAuth2 {field} is not a valid URL once its templates are filled in: {url}"
EXPIRING_ERROR = "The provider's refresh token for this grant expires on {date}: Reconnect before."


@dataclass(frozen=True)
class OAuthClient:
    """A client registration: the service holding client id/secret, parsed params, secret."""

    service: Service
    params: OAuth2Params
    client_secret: str | None


def url_origin(url: httpx.URL) -> tuple[str, str, int]:
    return (url.scheme, url.host.lower(), url.port or {"http": 80, "https": 443}[url.scheme])


def egress_allow_origins(url: str) -> frozenset[tuple[str, str, int, str]]:
    """Token, revoke and webhook requests share the runner's one sandbox exemption."""
    return sandbox_exemption(url)


# The provider's endpoints: for a connector grant always the catalog's, never a service's.
ENDPOINT_KEYS = ("authorize_url", "token_url", "revoke_url")
ENDPOINT_LABELS = {
    "authorize_url": "authorize URL", "token_url": "token URL", "revoke_url": "revocation URL",
}  # fmt: skip


def connector_client_service(target: Target) -> Service | None:
    """The organization's OAuth2 service holding the app registration for a catalog connector.

    A service made from the catalog records it as source "catalog" and source_detail <key>
    (its ``connector`` field means "a pre-existing service points at this connector" and is
    rewritten by every edit, so it cannot say where a service came from). The oldest wins, so
    the choice stays put while it exists.
    """
    made_from = Q(source=Source.CATALOG, source_detail=target.connector) | Q(
        connector=target.connector
    )
    return (
        Service.objects.filter(organization=target.organization, auth_method="oauth2")
        .filter(made_from)
        .order_by("created_at", "pk")
        .first()
    )


def oauth_client_for(target: Target, *, values: Mapping[str, Any] | None = None) -> OAuthClient:
    """The client registration for a target, its endpoint templates filled in from ``values``
    (the authentication's non-secret extra parameter values).

    A connector uses the client id and secret of the org's service made from it, but always
    the catalog's own endpoints: whoever edits that service cannot redirect other members'
    codes and refresh tokens to their server.
    """
    if target.method_key != "oauth2":
        raise ValidationError({NON_FIELD: [NOT_OAUTH2]})
    service = target.service
    raw: dict[str, Any]
    if service is None:
        service = connector_client_service(target)
        if service is None:
            raise ValidationError(
                {NON_FIELD: [CONNECTOR_NEEDS_CLIENT.format(name=target.connector)]}
            )
        raw = {k: v for k, v in (service.auth_params or {}).items() if k not in ENDPOINT_KEYS}
        raw.update({k: target.params[k] for k in ENDPOINT_KEYS if target.params.get(k)})
    else:
        raw = dict(service.auth_params or {})
    try:
        params = OAUTH2.parse_params(raw)
    except AuthParamsError as exc:
        raise ValidationError({NON_FIELD: [SERVICE_MISCONFIGURED.format(problems=exc)]}) from exc
    assert isinstance(params, OAuth2Params)  # noqa: S101 - narrowing
    params = render_endpoints(params, target=target, service=service, values=values)
    return OAuthClient(service, params, service.get_secret_params().get("client_secret") or None)


def render_endpoints(
    params: OAuth2Params, *, target: Target, service: Service, values: Mapping[str, Any] | None
) -> OAuth2Params:
    """Fill {{auth.KEY}} / {{service.KEY}} in the authorize, token and revocation URLs.

    Only non-secret extra parameters fill them (a URL ends up in logs and browser history);
    each of their values is percent-encoded, so it cannot add a path, a port or another host.
    """
    urls = {key: getattr(params, key) for key in ENDPOINT_KEYS}
    if not any(url and templating.has_templates(url) for url in urls.values()):
        return params
    public = [p.model_dump() for p in target.extra_params if not p.secret]
    auth = {
        k: quote(str(v), safe="") for k, v in templating.auth_values(public, values or {}).items()
    }
    own = templating.service_values(name=service.name, slug=service.slug, base_url=service.base_url)
    updates: dict[str, str] = {}
    for key, url in urls.items():
        if not url or not templating.has_templates(url):
            continue
        label = ENDPOINT_LABELS[key]
        try:
            rendered = templating.render(url, auth=auth, service=own)
        except templating.TemplateError as exc:
            message = ENDPOINT_TEMPLATE.format(field=label, problem=exc.message)
            raise ValidationError({NON_FIELD: [message]}) from exc
        try:
            check_auth_url(rendered)
        except ValueError as exc:  # pydantic's custom error is a ValueError
            message = ENDPOINT_INVALID.format(field=label, url=rendered[:200])
            raise ValidationError({NON_FIELD: [message]}) from exc
        updates[key] = rendered
    return params.model_copy(update=updates)


def _timeout() -> float:
    return float(getattr(settings, "AUTH_TOKEN_TIMEOUT_SECONDS", 15))


def send_token_request(request: TokenRequest) -> TokenResult:
    """POST to the token endpoint through egress; raises EgressError or TokenError."""
    response = egress.send(
        "POST",
        request.url,
        headers=request.headers,
        data=request.data,
        timeout=_timeout(),
        max_bytes=MAX_TOKEN_RESPONSE_BYTES,
        allow_origins=egress_allow_origins(request.url),
    )
    return parse_token_response(
        response.status_code,
        response.headers.get("content-type", ""),
        response.content,
        now=timezone.now(),
    )


# ---- storing a grant ------------------------------------------------------------------------


def grant_type_of(authentication: Authentication) -> str:
    """The grant the authentication's service uses ("" when it cannot be told)."""
    try:
        target = target_of(authentication)
        return oauth_client_for(target, values=authentication.values).params.grant_type
    except (ValidationError, PermissionDenied):
        return ""


def refresh_warn_window() -> timedelta:
    return timedelta(days=int(getattr(settings, "AUTH_REFRESH_TOKEN_WARN_DAYS", 7)))


def grant_end(authentication: Authentication) -> datetime | None:
    """When the grant itself stops being refreshable: the refresh token's expiry (stated, or
    learned from how long this service's grants lived), or the access token's when there is
    no refresh token. None when unknown or when the grant can always be renewed."""
    from services.status import learned_grant_lifetime

    if grant_type_of(authentication) == "client_credentials":
        return None  # a new token can always be had with the client's own credentials
    if authentication.refresh_expires_at is not None:
        return authentication.refresh_expires_at
    if not authentication.get_secrets().get("refresh_token"):
        return authentication.expires_at
    if authentication.grant_started_at is None:
        return None
    learned = learned_grant_lifetime(
        service=authentication.service,
        organization_id=authentication.organization_id,
        connector=authentication.connector,
    )
    return authentication.grant_started_at + learned if learned else None


def healthy_status(authentication: Authentication, now: datetime) -> tuple[str, str]:
    """(status, error) for a grant that works: expiring when its end is near, else active."""
    end = grant_end(authentication)
    if end is not None and end - now <= refresh_warn_window():
        return AuthStatus.EXPIRING, EXPIRING_ERROR.format(date=end.strftime("%Y-%m-%d %H:%M UTC"))
    return AuthStatus.ACTIVE, ""


def store_token_result(
    authentication: Authentication,
    result: TokenResult,
    *,
    now: datetime,
    new_grant: bool,
    default_scopes: list[str],
) -> bool:
    """Put a token response on the row (not saved). Returns True when the refresh token rotated.

    A refresh answer without a refresh token keeps the stored one; a new grant replaces all
    grant tokens but keeps other secrets (secret extra parameters).
    """
    stored = authentication.get_secrets()
    grant_keys = set(OAUTH2.stored_secret_keys)
    secrets_ = {k: v for k, v in stored.items() if not (new_grant and k in grant_keys)}
    secrets_["access_token"] = result.access_token
    old_refresh = stored.get("refresh_token")
    rotated = bool(result.refresh_token) and result.refresh_token != old_refresh
    if result.refresh_token:
        secrets_["refresh_token"] = result.refresh_token
    if result.id_token:
        secrets_["id_token"] = result.id_token
    authentication.set_secrets(secrets_)
    authentication.token_type = result.token_type[:40]
    authentication.expires_at = result.expires_at
    if result.refresh_expires_at is not None:
        authentication.refresh_expires_at = result.refresh_expires_at
    elif new_grant or rotated:
        authentication.refresh_expires_at = None  # a new refresh token, of unknown lifetime
    if result.scopes is not None:
        authentication.scopes = result.scopes
    elif new_grant:
        authentication.scopes = list(default_scopes)
    if new_grant:
        authentication.grant_started_at = now
        authentication.refresh_count = 0
        authentication.last_refreshed_at = None
    authentication.failure_count = 0
    authentication.next_retry_at = None
    return rotated


GRANT_FIELDS = [
    "secrets", "token_type", "expires_at", "refresh_expires_at", "scopes", "grant_started_at",
    "refresh_count", "last_refreshed_at", "failure_count", "next_retry_at", "updated_at",
]  # fmt: skip


# ---- revocation -----------------------------------------------------------------------------


def grant_revoke(*, authentication: Authentication) -> bool:
    """Revoke the grant at the provider (RFC 7009) when the service has a revoke URL.

    Best effort: a failure is logged and the caller goes on (deleting still deletes).
    """
    try:
        client = oauth_client_for(target_of(authentication), values=authentication.values)
    except (ValidationError, PermissionDenied):
        return False
    url, client_id = client.params.revoke_url, client.params.client_id
    stored = authentication.get_secrets() if authentication.secrets else {}
    token = stored.get("refresh_token") or stored.get("access_token")
    if not url or not token or not client_id:  # a service's params always have a client id
        return False
    hint = "refresh_token" if stored.get("refresh_token") else "access_token"
    data = {"token": token, "token_type_hint": hint}
    headers = {"Accept": "application/json"}
    if client.client_secret and client.params.token_endpoint_auth == "basic":
        headers["Authorization"] = client_basic_header(client_id, client.client_secret)
    else:
        data["client_id"] = client_id
        if client.client_secret:
            data["client_secret"] = client.client_secret
    try:
        response = egress.send(
            "POST", url, headers=headers, data=data, timeout=_timeout(),
            max_bytes=MAX_TOKEN_RESPONSE_BYTES, allow_origins=egress_allow_origins(url),
        )  # fmt: skip
    except egress.EgressError as exc:
        logger.warning("revoking authentication %s failed: %s", authentication.public_id, exc)
        return False
    ok = 200 <= response.status_code < 300
    if not ok:
        logger.warning("revoking authentication %s: the provider answered %s",
                       authentication.public_id, response.status_code)  # fmt: skip
    return ok
