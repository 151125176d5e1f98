"""OAuth2 connecting: the authorization code flow (state, PKCE S256, RFC 9207 iss) and the
client credentials grant.

The grant helpers in services.auth_methods.oauth2 build the requests and parse the answers;
services.grants sends them through traysvc.egress and stores the result; this module keeps
the flow's state (OAuthFlow) and makes or reconnects the Authentication.
A flow is single use, bound to the user who started it and valid for FLOW_TTL. Reconnecting
gives an existing authentication a new grant and keeps its id, so everything using it keeps
working.
"""

# ruff: noqa: S105 - message constants mention tokens; none is a secret

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from services.auth_methods.base import NON_FIELD
from services.auth_methods.oauth2 import (
    OAuth2Params,
    TokenError,
    TokenResult,
    build_authorize_url,
    pkce_pair,
    token_request_for_client_credentials,
    token_request_for_code,
)
from services.authentications import (
    NAME_TAKEN,
    Target,
    check_name,
    check_workspace,
    clean_grant_values,
    clean_values,
    new_authentication,
    resolve_target,
    save_new_authentication,
    target_of,
)
from services.grants import (
    GRANT_FIELDS,
    OAuthClient,
    healthy_status,
    oauth_client_for,
    send_token_request,
    store_token_result,
    url_origin,
)
from services.grants import egress_allow_origins as egress_allow_origins  # re-exported
from services.grants import grant_revoke as grant_revoke  # re-exported
from services.grants import grant_type_of as grant_type_of  # re-exported
from services.models import Authentication, AuthStatus, OAuthFlow, Service
from traysvc import crypto, egress
from workspaces.models import Membership, Workspace
from workspaces.services import audit

logger = logging.getLogger(__name__)


FLOW_TTL = timedelta(minutes=10)
CALLBACK_PATH = "/oauth2/callback"

FLOW_UNKNOWN = (
    "This sign-in link is not valid (its state is unknown or forged). "
    "Start connecting again from traysvc."
)
FLOW_REUSED = "This sign-in link was already used. Start connecting again from traysvc."
FLOW_EXPIRED = "This sign-in took longer than 10 minutes and expired. Start connecting again."
FLOW_OTHER_USER = (
    "This sign-in was started by another user, so it cannot finish here. "
    "Start connecting again from your own account."
)
FLOW_ISS_MISMATCH = (
    "The answer came from another authorization server ({iss}) than the one this sign-in was "
    "sent to, so it was refused (a possible mix-up attack). Start connecting again."
)
FLOW_NOT_MEMBER = "You are no longer a member of the organization this sign-in was for."
FLOW_BUSY = (
    "This sign-in is already being completed (the provider's answer arrived twice, e.g. from "
    "a double click or a reload). Wait a moment, then open your authentications."
)
PROVIDER_ACCESS_DENIED = (
    "Access was declined at the provider, so nothing was connected. "
    "Start again and choose Allow to connect."
)
PROVIDER_ERROR = (
    "The provider refused the authorization ({error}{description}). Nothing was connected: start "
    "again, and if it keeps failing check the service's OAuth settings."
)
FLOW_NO_CODE = "The provider's answer had no authorization code. Start connecting again."
TOKEN_TIMEOUT = (
    "The provider's token endpoint did not answer in time, so nothing was connected. "
    "Try again in a moment."
)
TOKEN_UNREACHABLE = (
    "The provider's token endpoint could not be reached ({detail}), so nothing was connected."
)
TOKEN_REFUSED = (
    "The provider's token endpoint refused the request ({error}{description}), so nothing was "
    "connected. Check the service's client id, client secret and redirect URI, then try again."
)
TOKEN_GARBAGE = (
    "The provider's token endpoint did not answer with a token ({detail}), so nothing was "
    "connected. Check the service's token URL, or try again if the provider is having trouble."
)
CC_FAILED = "No token could be obtained with the client credentials grant: {reason}"
NOT_AUTHORIZATION_CODE = (
    "This service uses the client credentials grant: it connects without a browser sign-in."
)
NOT_CLIENT_CREDENTIALS = "This service uses the authorization code grant: connect in a browser."
RECONNECT_OTHER_TARGET = "This authentication belongs to another service: reconnect it there."

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class OAuthFlowError(Exception):
    """A flow or token request that cannot complete; the message is for the user."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def redirect_uri() -> str:
    """The exact redirect URI to register at the provider."""
    return settings.TRAYSVC_PUBLIC_URL + CALLBACK_PATH


def _clean(text: str, limit: int = 300) -> str:
    return _CONTROL.sub(" ", text or "").strip()[:limit]


def describe_failure(exc: Exception) -> str:
    """A token request failure in words (no secret: egress messages carry no query or header)."""
    if isinstance(exc, egress.EgressError):
        if exc.kind == "timeout":
            return TOKEN_TIMEOUT
        return TOKEN_UNREACHABLE.format(detail=_clean(exc.message))
    if isinstance(exc, TokenError):
        if exc.code in ("invalid_response", "http_error"):
            return TOKEN_GARBAGE.format(detail=_clean(exc.description or exc.code))
        description = f": {_clean(exc.description)}" if exc.description else ""
        return TOKEN_REFUSED.format(error=_clean(exc.code, 80), description=description)
    raise TypeError(type(exc).__name__)


# ---- authorization code ---------------------------------------------------------------------


def _hash_state(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


def _issuer_for(params: OAuth2Params) -> str:
    """The issuer to expect in the callback (RFC 9207): configured, else the authorize URL's
    origin (an issuer shares its origin with its authorization endpoint)."""
    configured = getattr(params, "issuer", None)
    if configured:
        return str(configured).rstrip("/")
    url = httpx.URL(params.authorize_url or "")
    default = {"http": 80, "https": 443}.get(url.scheme)
    port = f":{url.port}" if url.port and url.port != default else ""
    return f"{url.scheme}://{url.host}{port}"


def _issuer_matches(expected: str, iss: str) -> bool:
    iss = iss.rstrip("/")
    if iss == expected:
        return True
    try:
        got = httpx.URL(iss)
        want = httpx.URL(expected)
    except httpx.InvalidURL:
        return False
    bare = want.path in ("", "/")  # only a bare origin was known: compare origins
    return bare and got.scheme in ("http", "https") and url_origin(got) == url_origin(want)


def oauth_flow_start(
    *,
    membership: Membership,
    workspace: Workspace,
    service: Service | None = None,
    connector: str | None = None,
    name: str,
    authentication: Authentication | None = None,
    return_to: str = "page",
    values: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """Begin the authorization code grant: (authorize URL to send the browser to, state).

    ``values``: the non-secret extra parameter values (a Zendesk subdomain, a Microsoft
    tenant); they fill the OAuth URLs' templates and become the authentication's values. A
    reconnect uses the authentication's own values instead.
    """
    if authentication is not None:
        if authentication.organization_id != membership.organization_id:
            raise PermissionDenied(RECONNECT_OTHER_TARGET)
        workspace = authentication.workspace
        name = authentication.name
        target = target_of(authentication)
        wanted = resolve_target(
            organization=membership.organization, service=service, connector=connector
        ) if (service is not None or connector) else target  # fmt: skip
        if (wanted.service, wanted.connector) != (target.service, target.connector):
            raise ValidationError({NON_FIELD: [RECONNECT_OTHER_TARGET]})
        flow_values = dict(authentication.values or {})
    else:
        target = resolve_target(
            organization=membership.organization, service=service, connector=connector
        )
        name = check_name(workspace=workspace, name=name)
        flow_values = clean_grant_values(target, values)
    check_workspace(membership=membership, workspace=workspace)
    client = oauth_client_for(target, values=flow_values)
    if client.params.grant_type != "authorization_code":
        raise ValidationError({NON_FIELD: [NOT_AUTHORIZATION_CODE]})
    state = secrets.token_urlsafe(32)
    verifier, challenge = pkce_pair() if client.params.pkce else ("", None)
    flow = OAuthFlow(
        organization=membership.organization,
        state_hash=_hash_state(state),
        service=target.service,
        connector=target.connector,
        workspace=workspace,
        user=membership.user,
        authentication=authentication,
        name=name,
        values=flow_values,
        issuer=_issuer_for(client.params),
        redirect_uri=redirect_uri(),
        return_to=return_to[:20],
        expires_at=timezone.now() + FLOW_TTL,
    )
    if verifier:
        flow.code_verifier = crypto.encrypt(verifier, aad=flow.verifier_aad)
    url = build_authorize_url(
        client.params, redirect_uri=flow.redirect_uri, state=state, code_challenge=challenge
    )
    with transaction.atomic():
        flow.save()
        audit(
            organization=membership.organization,
            actor=membership.user,
            action="oauth.start",
            target_type="authentication" if authentication else "oauth_flow",
            target_id=authentication.public_id if authentication else flow.public_id,
            details={"name": name, "reconnect": authentication is not None},
        )
    return url, state


def _claim(*, user: AbstractBaseUser, state: str) -> OAuthFlow:
    """Check and consume the flow a state names, committing the consumption (single use)."""
    if not state or len(state) > 512:
        raise OAuthFlowError(FLOW_UNKNOWN, code="unknown_state")
    try:
        return _consume(user=user, state=state)
    except OperationalError as exc:
        # SQLite: a second callback for the same flow, racing the first for the write lock.
        logger.info("OAuth callback for a flow being completed concurrently: %s", exc)
        raise OAuthFlowError(FLOW_BUSY, code="busy") from exc


def _consume(*, user: AbstractBaseUser, state: str) -> OAuthFlow:
    with transaction.atomic():
        flow = (
            OAuthFlow.objects.select_for_update(of=("self",))
            .select_related("organization", "service", "workspace", "authentication")
            .filter(state_hash=_hash_state(state))
            .first()
        )
        if flow is None:
            problem = (FLOW_UNKNOWN, "unknown_state")
        elif flow.user_id != user.pk:
            problem = (FLOW_OTHER_USER, "other_user")
        elif flow.used_at is not None:
            problem = (FLOW_REUSED, "reused_state")
        elif flow.expires_at <= timezone.now():
            problem = (FLOW_EXPIRED, "expired_state")
        else:
            # Compare-and-set: of two callbacks racing past the checks, one claims the flow.
            now = timezone.now()
            claimed = OAuthFlow.objects.filter(pk=flow.pk, used_at__isnull=True).update(
                used_at=now, updated_at=now
            )
            if claimed:
                flow.used_at = flow.updated_at = now
                return flow
            problem = (FLOW_BUSY, "busy")
    logger.warning(
        "OAuth callback refused (%s) for flow %s by user %s",
        problem[1],
        flow.public_id if flow else "-",
        user.pk,
    )
    raise OAuthFlowError(problem[0], code=problem[1])


def oauth_flow_finish(
    *,
    user: AbstractBaseUser,
    state: str,
    code: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
    iss: str | None = None,
) -> Authentication:
    """Complete the callback: checks, token exchange, then the new (or reconnected) row."""
    flow = _claim(user=user, state=state)
    membership = Membership.objects.filter(organization=flow.organization, user=user).first()
    if membership is None:
        raise OAuthFlowError(FLOW_NOT_MEMBER, code="not_member")
    if iss and flow.issuer and not _issuer_matches(flow.issuer, iss):
        logger.warning("OAuth callback for flow %s: iss %r != %r", flow.public_id, iss, flow.issuer)
        raise OAuthFlowError(FLOW_ISS_MISMATCH.format(iss=_clean(iss, 200)), code="iss_mismatch")
    if error:
        logger.info("OAuth provider error %r for flow %s", _clean(error, 80), flow.public_id)
        if error == "access_denied":
            raise OAuthFlowError(PROVIDER_ACCESS_DENIED, code="access_denied")
        description = f": {_clean(error_description or '')}" if error_description else ""
        raise OAuthFlowError(
            PROVIDER_ERROR.format(error=_clean(error, 80), description=description),
            code=_clean(error, 64),
        )
    if not code:
        raise OAuthFlowError(FLOW_NO_CODE, code="no_code")
    if flow.authentication is not None:
        target = target_of(flow.authentication)
    else:
        target = resolve_target(
            organization=flow.organization,
            service=flow.service,
            connector=None if flow.service_id else flow.connector,
        )
    try:
        client = oauth_client_for(target, values=flow.values)
    except ValidationError as exc:
        raise OAuthFlowError(" ".join(exc.messages), code="misconfigured") from exc
    verifier = crypto.decrypt(flow.code_verifier, aad=flow.verifier_aad).decode() if (
        flow.code_verifier) else None  # fmt: skip
    request = token_request_for_code(
        client.params,
        client_secret=client.client_secret,
        code=code,
        redirect_uri=flow.redirect_uri,
        code_verifier=verifier,
    )
    try:
        result = send_token_request(request)
    except (egress.EgressError, TokenError) as exc:
        logger.warning("OAuth token exchange failed for flow %s: %s", flow.public_id, exc)
        raise OAuthFlowError(
            describe_failure(exc), code=getattr(exc, "code", "") or "egress"
        ) from exc
    return _save_grant(flow=flow, membership=membership, client=client, result=result)


@transaction.atomic
def _save_grant(
    *, flow: OAuthFlow, membership: Membership, client: OAuthClient, result: TokenResult
) -> Authentication:
    from services.status import authentication_transition

    now = timezone.now()
    reconnect = flow.authentication_id is not None
    if reconnect:
        authentication = Authentication.objects.select_for_update(of=("self",)).get(
            pk=flow.authentication_id
        )
    else:
        if Authentication.objects.filter(workspace=flow.workspace, name=flow.name).exists():
            raise OAuthFlowError(NAME_TAKEN.format(name=flow.name), code="name_taken")
        authentication = Authentication(
            organization=flow.organization,
            workspace=flow.workspace,
            service=flow.service,
            connector=flow.connector,
            name=flow.name,
            status=AuthStatus.PENDING,
            values=dict(flow.values or {}),
            created_by=membership.user,
        )
    store_token_result(
        authentication, result, now=now, new_grant=True, default_scopes=client.params.scopes
    )
    if reconnect:
        authentication.save(update_fields=GRANT_FIELDS)
    else:
        authentication.full_clean()
        try:
            with transaction.atomic():
                authentication.save()
        except IntegrityError as exc:
            raise OAuthFlowError(NAME_TAKEN.format(name=flow.name), code="name_taken") from exc
    audit(
        organization=flow.organization,
        actor=membership.user,
        action="authentication.reconnect" if reconnect else "authentication.create",
        target_type="authentication",
        target_id=authentication.public_id,
        details={
            "name": authentication.name,
            "grant": "authorization_code",
            "scopes": authentication.scopes,
        },  # fmt: skip
    )
    status, error = healthy_status(authentication, now)
    authentication_transition(authentication=authentication, status=status, error=error)
    return authentication


# ---- client credentials ---------------------------------------------------------------------


def client_credentials_connect(
    *,
    membership: Membership,
    workspace: Workspace,
    service: Service,
    name: str,
    values: dict[str, Any] | None = None,
) -> Authentication:
    """Create a client-credentials authentication, obtaining its first token now.

    ``values``: its extra parameter values (a tenant in the token URL; secret ones are stored
    encrypted). Raises OAuthFlowError (nothing is created) when no token can be had.
    """
    check_workspace(membership=membership, workspace=workspace)
    target = resolve_target(organization=membership.organization, service=service)
    extra_secrets, plain = clean_values(target, values or {})
    client = oauth_client_for(target, values=plain)
    if client.params.grant_type != "client_credentials":
        raise ValidationError({NON_FIELD: [NOT_CLIENT_CREDENTIALS]})
    name = check_name(workspace=workspace, name=name)
    request = token_request_for_client_credentials(
        client.params, client_secret=client.client_secret
    )
    try:
        result = send_token_request(request)
    except (egress.EgressError, TokenError) as exc:
        logger.warning("client credentials token request failed for service %s: %s",
                       service.public_id, exc)  # fmt: skip
        reason = describe_failure(exc)
        raise OAuthFlowError(CC_FAILED.format(reason=reason), code="token_failed") from exc
    return _save_client_credentials(
        membership=membership, workspace=workspace, target=target, name=name, result=result,
        scopes=client.params.scopes, values=(extra_secrets, plain),
    )  # fmt: skip


@transaction.atomic
def _save_client_credentials(
    *,
    membership: Membership,
    workspace: Workspace,
    target: Target,
    name: str,
    result: TokenResult,
    scopes: list[str],
    values: tuple[dict[str, str], dict[str, str]],
) -> Authentication:
    now = timezone.now()
    extra_secrets, plain = values
    # The extra secrets are kept by store_token_result next to the tokens.
    authentication = new_authentication(
        membership=membership, workspace=workspace, target=target, name=name, values=plain,
        secrets=extra_secrets,
    )  # fmt: skip
    store_token_result(authentication, result, now=now, new_grant=True, default_scopes=scopes)
    save_new_authentication(authentication)
    audit(
        organization=membership.organization,
        actor=membership.user,
        action="authentication.create",
        target_type="authentication",
        target_id=authentication.public_id,
        details={"name": name, "grant": "client_credentials", "scopes": authentication.scopes},
    )
    return authentication
