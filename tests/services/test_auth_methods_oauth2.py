"""OAuth2 grant helpers of the auth-method registry: PKCE, authorize URL, token requests and
the parsing of token responses. No I/O: these build and read plain data.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from services.auth_methods import get_method, oauth2
from services.auth_methods.oauth2 import (
    OAuth2Params,
    TokenError,
    build_authorize_url,
    parse_token_response,
    pkce_challenge,
    pkce_pair,
    token_request_for_client_credentials,
    token_request_for_code,
    token_request_for_refresh,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
OAUTH2_OK = {
    "client_id": "my-client",
    "client_secret": "s3cret",
    "authorize_url": "https://provider.example/authorize",
    "token_url": "https://provider.example/token",
}

# ---- PKCE and the authorize URL --------------------------------------------------------------


def test_pkce_challenge_matches_rfc7636_appendix_b() -> None:
    # RFC 7636 Appendix B; a base64url SHA-256 without padding is always 43 characters.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert len(pkce_challenge("x" * 128)) == 43


def test_pkce_pair_is_fresh_and_consistent() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    assert set(verifier) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
    assert challenge == pkce_challenge(verifier)
    assert pkce_pair()[0] != verifier


def oauth2_params(**overrides: object) -> OAuth2Params:
    return get_method("oauth2").validate_service_params({**OAUTH2_OK, **overrides})  # type: ignore[return-value]


def test_authorize_url_carries_state_pkce_scopes_and_extras() -> None:
    params = oauth2_params(
        authorize_url="https://provider.example/authorize?tenant=acme",
        scopes=["repo", "read:org"],
        scope_separator=",",
        extra_authorize_params={"access_type": "offline", "prompt": "consent"},
        audience="https://api.example",
    )
    url = build_authorize_url(
        params,
        redirect_uri="http://127.0.0.1:8000/oauth2/callback",
        state="st-123",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        extra={"login_hint": "ann@example.com"},
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://provider.example/authorize"
    query = dict(parse_qsl(parts.query))
    assert query == {
        "tenant": "acme",
        "response_type": "code",
        "client_id": "my-client",
        "redirect_uri": "http://127.0.0.1:8000/oauth2/callback",
        "scope": "repo,read:org",
        "state": "st-123",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "audience": "https://api.example",
        "access_type": "offline",
        "prompt": "consent",
        "login_hint": "ann@example.com",
    }


def test_authorize_url_space_separated_scopes_and_no_pkce() -> None:
    url = build_authorize_url(
        oauth2_params(scopes="openid email"), redirect_uri="http://r/cb", state="s"
    )
    query = parse_qs(urlsplit(url).query)
    assert query["scope"] == ["openid email"]
    assert "%20" in url
    assert "code_challenge" not in query
    assert "code_challenge_method" not in query
    with pytest.raises(ValueError, match="state"):
        build_authorize_url(oauth2_params(), redirect_uri="r", state="s", extra={"state": "x"})


# ---- token requests --------------------------------------------------------------------------


def test_code_exchange_uses_basic_client_auth_form_encoded_per_rfc6749() -> None:
    params = oauth2_params(extra_token_params={"resource": "https://api.example"})
    req = token_request_for_code(
        params,
        client_secret="a+b/c d",
        code="the-code",
        redirect_uri="http://r/cb",
        code_verifier="v" * 43,
    )
    assert req.url == "https://provider.example/token"
    expected = base64.b64encode(b"my-client:a%2Bb%2Fc+d").decode()
    assert req.headers["Authorization"] == f"Basic {expected}"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert req.headers["Accept"] == "application/json"
    assert req.data == {
        "resource": "https://api.example",
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": "http://r/cb",
        "code_verifier": "v" * 43,
    }


def test_body_client_auth_and_public_clients() -> None:
    body = token_request_for_refresh(
        oauth2_params(token_endpoint_auth="body"), client_secret="s", refresh_token="rt"
    )
    assert "Authorization" not in body.headers
    assert body.data == {
        "grant_type": "refresh_token",
        "refresh_token": "rt",
        "client_id": "my-client",
        "client_secret": "s",
    }
    public = token_request_for_code(
        oauth2_params(), client_secret=None, code="c", redirect_uri="r", code_verifier=None
    )
    assert "Authorization" not in public.headers
    assert public.data["client_id"] == "my-client"
    assert "client_secret" not in public.data
    assert "code_verifier" not in public.data
    assert repr(body) == "TokenRequest(url='https://provider.example/token')"


def test_client_credentials_request_sends_scope_and_audience() -> None:
    params = oauth2_params(
        grant_type="client_credentials", scopes=["a", "b"], audience="https://api.example"
    )
    req = token_request_for_client_credentials(params, client_secret="s3cret")
    assert req.data == {
        "grant_type": "client_credentials",
        "scope": "a b",
        "audience": "https://api.example",
    }
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"my-client:s3cret").decode()


# ---- token responses -------------------------------------------------------------------------

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        pytest.param(
            JSON,
            b'{"access_token":"at","token_type":"Bearer","expires_in":3600,'
            b'"refresh_token":"rt","scope":"read write"}',
            {
                "token_type": "bearer",
                "expires_in": 3600,
                "refresh_token": "rt",
                "scopes": ["read", "write"],
            },
            id="standard-json",
        ),
        pytest.param(
            "application/json; charset=utf-8",
            b'{"access_token":"at","token_type":"bearer","expires_in":"3600"}',
            {"expires_in": 3600, "refresh_token": None, "scopes": None},
            id="expires-in-string-no-refresh-token",
        ),
        pytest.param(
            JSON,
            b'{"access_token":"at"}',
            {"expires_in": None, "expires_at": None, "token_type": "bearer"},
            id="expires-in-missing-token-type-missing",
        ),
        pytest.param(
            FORM,
            b"access_token=at&scope=repo%2Cgist&token_type=bearer",
            {"scopes": ["repo", "gist"], "refresh_token": None},
            id="github-form-encoded",
        ),
        pytest.param(
            JSON,
            b'{"access_token":"at","expires_in":60,"refresh_token":"rotated",'
            b'"refresh_token_expires_in":"7200"}',
            {"refresh_token": "rotated", "refresh_expires_at": NOW + timedelta(seconds=7200)},
            id="rotated-refresh-token-with-lifetime",
        ),
        pytest.param(
            JSON,
            b'{"access_token":"at","expires_in":300,"refresh_expires_in":1800}',
            {"refresh_expires_at": NOW + timedelta(seconds=1800)},
            id="keycloak-refresh-expires-in",
        ),
        pytest.param(
            JSON,
            b'{"access_token":"at","refresh_expires_in":0}',
            {"refresh_expires_at": None},
            id="keycloak-offline-token-never-expires",
        ),
        pytest.param(
            JSON,
            b'{"access_token":"at","scope":["openid","email"],"token_type":"BEARER"}',
            {"scopes": ["openid", "email"], "token_type": "bearer"},
            id="scope-list-token-type-upper",
        ),
        pytest.param(
            "text/plain",
            b'{"access_token":"at","expires_in":3599.9}',
            {"expires_in": 3599},
            id="json-served-as-text-float-expiry",
        ),
        pytest.param(
            "application/vnd.provider+json",
            b'{"access_token":"at","token_type":"MAC"}',
            {"token_type": "mac"},
            id="vendor-json-other-token-type",
        ),
        pytest.param(
            "",
            b"access_token=at&expires_in=120&refresh_token=rt",
            {"expires_in": 120, "expires_at": NOW + timedelta(seconds=120), "refresh_token": "rt"},
            id="form-without-content-type",
        ),
        pytest.param(
            JSON,
            b'{"access_token":"at","expires_in":"soon","user_id":"u1","id_token":"jwt"}',
            {"expires_in": None, "extra": {"user_id": "u1"}, "id_token": "jwt"},
            id="garbage-expiry-ignored-extra-kept",
        ),
        pytest.param(
            JSON,
            '\ufeff{"access_token":"at","expires_in":true}'.encode(),
            {"expires_in": None},
            id="bom-and-boolean-expiry",
        ),
    ],
)
def test_parse_token_response_success(content_type: str, body: bytes, expected: dict) -> None:
    result = parse_token_response(200, content_type, body, now=NOW)
    assert result.access_token == "at"
    for name, value in expected.items():
        assert getattr(result, name) == value, name
    if result.expires_in is not None:
        assert result.expires_at == NOW + timedelta(seconds=result.expires_in)


def test_token_result_repr_hides_tokens() -> None:
    body = b'{"access_token":"SECRET-AT","refresh_token":"SECRET-RT","id_token":"SECRET-ID"}'
    result = parse_token_response(200, JSON, body, now=NOW)
    assert "SECRET" not in repr(result)


HTML_PAGE = b"<!doctype html><html><body>Bad gateway</body></html>"


@pytest.mark.parametrize(
    ("status", "content_type", "body", "code", "permanent", "message"),
    [
        (
            400,
            JSON,
            b'{"error":"invalid_grant","error_description":"Token revoked"}',
            "invalid_grant",
            True,
            "Token revoked",
        ),
        (401, JSON, b'{"error":"invalid_client"}', "invalid_client", True, "invalid_client"),
        (403, FORM, b"error=access_denied", "access_denied", True, "access_denied"),
        (429, JSON, b'{"error":"rate_limited"}', "rate_limited", False, "rate_limited"),
        (408, JSON, b'{"error":"timeout"}', "timeout", False, "timeout"),
        (409, JSON, b'{"error":"conflict"}', "conflict", False, "conflict"),
        (423, JSON, b'{"error":"locked"}', "locked", False, "locked"),
        (425, JSON, b'{"error":"too_early"}', "too_early", False, "too_early"),
        (
            503,
            JSON,
            b'{"error":"temporarily_unavailable"}',
            "temporarily_unavailable",
            False,
            "temporarily_unavailable",
        ),
        (
            400,
            JSON,
            b'{"error":"temporarily_unavailable"}',
            "temporarily_unavailable",
            False,
            "temporarily_unavailable",
        ),
        (
            200,
            FORM,
            b"error=bad_verification_code&error_description=The+code+is+wrong",
            "bad_verification_code",
            True,
            "The code is wrong",
        ),
        (
            400,
            JSON,
            b'{"error":{"message":"Invalid code","type":"OAuthException","code":100}}',
            "OAuthException",
            True,
            "Invalid code",
        ),
        (
            502,
            "text/html",
            HTML_PAGE,
            "invalid_response",
            False,
            oauth2.TOKEN_HTML.format(status=502),
        ),
        (
            200,
            "text/html; charset=utf-8",
            HTML_PAGE,
            "invalid_response",
            False,
            "the token endpoint answered HTML (status 200)",
        ),
        (400, "", HTML_PAGE, "invalid_response", False, oauth2.TOKEN_HTML.format(status=400)),
        (
            200,
            "text/plain",
            b"hello",
            "invalid_response",
            False,
            "the token endpoint answered something that is not a token response (status 200)",
        ),
        (
            200,
            JSON,
            b"[1, 2]",
            "invalid_response",
            False,
            oauth2.TOKEN_NOT_A_TOKEN_RESPONSE.format(status=200),
        ),
        (
            200,
            JSON,
            b'{"token_type":"bearer"}',
            "invalid_response",
            False,
            oauth2.TOKEN_NOT_A_TOKEN_RESPONSE.format(status=200),
        ),
        (
            200,
            JSON,
            b'{"access_token":',
            "invalid_response",
            False,
            oauth2.TOKEN_NOT_A_TOKEN_RESPONSE.format(status=200),
        ),
        (
            500,
            "",
            b"",
            "invalid_response",
            False,
            oauth2.TOKEN_NOT_A_TOKEN_RESPONSE.format(status=500),
        ),
        (
            404,
            JSON,
            b'{"message":"Not Found"}',
            "http_error",
            True,
            oauth2.TOKEN_HTTP_ERROR.format(status=404),
        ),
        (
            500,
            JSON,
            b'{"message":"boom"}',
            "http_error",
            False,
            oauth2.TOKEN_HTTP_ERROR.format(status=500),
        ),
    ],
)
def test_parse_token_response_errors(
    status: int, content_type: str, body: bytes, code: str, permanent: bool, message: str
) -> None:
    with pytest.raises(TokenError) as info:
        parse_token_response(status, content_type, body, now=NOW)
    assert info.value.code == code
    assert info.value.permanent is permanent
    assert str(info.value) == message
    assert info.value.status == status


def test_parse_token_response_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_token_response(200, JSON, b'{"access_token":"at"}', now=datetime(2025, 1, 1))  # noqa: DTZ001
