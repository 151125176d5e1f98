"""OAuth 1.0a (RFC 5849) request signing, HMAC-SHA1 or RSA-SHA1: discouraged, but still needed.

Signing uses oauthlib's Client (the one requests-oauthlib drives), over the final URL
including its query and, for form posts, the form body. Other bodies are covered by
``oauth_body_hash``, as requests-oauthlib does. RSA-SHA1 is computed with ``cryptography``
(oauthlib's own RSA path needs PyJWT, which this project does not install).
"""

# ruff: noqa: S105 - message constants and field names mention tokens; none is a secret

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from oauthlib.oauth1 import (
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_RSA_SHA1,
    SIGNATURE_TYPE_AUTH_HEADER,
    SIGNATURE_TYPE_QUERY,
    Client,
)

from .base import (
    AuthApplyError,
    AuthMethod,
    CredentialField,
    OptionalText,
    ParamsBase,
    ParamsModel,
    RegistrationText,
    append_query_param,
    request_body,
)

DISCOURAGED_REASON = (
    "OAuth 1.0a signs with a shared secret per request, has no scopes or token expiry "
    "and is deprecated by most providers; prefer OAuth2."
)
CONSUMER_SECRET_REQUIRED = "HMAC-SHA1 signing needs the consumer secret."
RSA_KEY_REQUIRED = "RSA-SHA1 signing needs an RSA private key (PEM)."
RSA_KEY_INVALID = "Enter an unencrypted RSA private key in PEM format."
TOKEN_SECRET_WITHOUT_TOKEN = "A token secret needs its token."
CANNOT_SIGN = "This request cannot be signed with OAuth 1.0a: {reason}"
NO_CONSUMER_KEY = "These are a connector's params, without a service's consumer key."

FORM = "application/x-www-form-urlencoded"


class OAuth1Params(ParamsBase):
    """The consumer registration; ``consumer_secret`` and ``rsa_private_key`` are secrets.

    A catalog connector's OAuth1 params (``CONNECTOR_CONTEXT``) have no ``consumer_key``.
    """

    consumer_key: RegistrationText = None
    signature_method: Literal["HMAC-SHA1", "RSA-SHA1"] = "HMAC-SHA1"
    realm: OptionalText = None
    signature_type: Literal["header", "query"] = "header"


def load_rsa_key(pem: str) -> rsa.RSAPrivateKey | None:
    """The private key, or None when the text is not an unencrypted RSA PEM key."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return key if isinstance(key, rsa.RSAPrivateKey) else None


def _sign_rsa_sha1(base_string: str, client: Client) -> str:
    key = load_rsa_key(client.rsa_key or "")
    if key is None:
        raise AuthApplyError(CANNOT_SIGN.format(reason=RSA_KEY_INVALID))
    signature = key.sign(base_string.encode("ascii"), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    return base64.b64encode(signature).decode("ascii")


class _Client(Client):
    """oauthlib's client with a cryptography RSA-SHA1 and a body hash over raw bytes."""

    SIGNATURE_METHODS = {**Client.SIGNATURE_METHODS, SIGNATURE_RSA_SHA1: _sign_rsa_sha1}
    body_hash: str | None = None

    def get_oauth_params(self, request: Any) -> list[tuple[str, str]]:
        params = super().get_oauth_params(request)
        if self.body_hash:
            params.append(("oauth_body_hash", self.body_hash))
        return params


class OAuth1Method(AuthMethod):
    """Per-request signatures with the consumer's and the token's secrets."""

    key = "oauth1"
    label = "OAuth 1.0a"
    discouraged = True
    discouraged_reason = DISCOURAGED_REASON
    params_model = OAuth1Params
    secret_param_keys = ("consumer_secret", "rsa_private_key")
    credential_fields = [
        CredentialField(
            "token", "Token", secret=True, required=False, help="Leave empty for 2-legged calls."
        ),
        CredentialField("token_secret", "Token secret", secret=True, required=False),
    ]

    def check_secrets(self, model: ParamsModel, secrets: Mapping[str, str]) -> dict[str, list[str]]:
        assert isinstance(model, OAuth1Params)  # noqa: S101 - narrowing
        if model.signature_method == "HMAC-SHA1":
            if not secrets.get("consumer_secret"):
                return {"consumer_secret": [CONSUMER_SECRET_REQUIRED]}
            return {}
        pem = secrets.get("rsa_private_key")
        if not pem:
            return {"rsa_private_key": [RSA_KEY_REQUIRED]}
        if load_rsa_key(pem) is None:
            return {"rsa_private_key": [RSA_KEY_INVALID]}
        return {}

    def check_credentials(self, values: dict[str, str]) -> dict[str, list[str]]:
        if values.get("token_secret") and not values.get("token"):
            return {"token_secret": [TOKEN_SECRET_WITHOUT_TOKEN]}
        return {}

    def apply(
        self, request: httpx.Request, *, params: ParamsModel, secrets: Mapping[str, str]
    ) -> httpx.Request:
        assert isinstance(params, OAuth1Params)  # noqa: S101
        if not params.consumer_key:
            raise AuthApplyError(CANNOT_SIGN.format(reason=NO_CONSUMER_KEY))
        rsa_method = params.signature_method == "RSA-SHA1"
        client = _Client(
            params.consumer_key,
            client_secret=None if rsa_method else secrets.get("consumer_secret", ""),
            resource_owner_key=secrets.get("token") or None,
            resource_owner_secret=secrets.get("token_secret") or None,
            signature_method=SIGNATURE_RSA_SHA1 if rsa_method else SIGNATURE_HMAC_SHA1,
            signature_type=(
                SIGNATURE_TYPE_QUERY
                if params.signature_type == "query"
                else SIGNATURE_TYPE_AUTH_HEADER
            ),
            rsa_key=secrets.get("rsa_private_key") if rsa_method else None,
            realm=params.realm,
        )
        body = request_body(request)
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        sign_body: str | None = None
        sign_headers: dict[str, str] = {}
        if body and media == FORM:
            sign_body = body.decode("utf-8", errors="strict")
            sign_headers["Content-Type"] = FORM
        elif body:
            client.body_hash = base64.b64encode(hashlib.sha1(body).digest()).decode("ascii")  # noqa: S324
        try:
            uri, headers, _ = client.sign(
                str(request.url), http_method=request.method, body=sign_body, headers=sign_headers
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise AuthApplyError(CANNOT_SIGN.format(reason=exc)) from exc
        if params.signature_type == "header":
            request.headers["Authorization"] = headers["Authorization"]
            return request
        before = {k for k, _ in parse_qsl(request.url.query.decode("latin-1"))}
        for name, value in parse_qsl(urlsplit(uri).query, keep_blank_values=True):
            if name.startswith("oauth_") and name not in before:
                append_query_param(request, name, value)
        return request


METHOD = OAuth1Method()
