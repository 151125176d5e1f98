"""The auth-method registry: keys, params and credential validation, redaction values.

OAuth2 grant helpers are in test_auth_methods_oauth2.py; applying credentials to real
requests is in test_auth_methods_apply.py.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.auth_methods import (
    ACK_REQUIRED,
    REGISTRY,
    UNKNOWN_METHOD,
    AuthParamsError,
    UnknownAuthMethod,
    base,
    basic,
    choices,
    get_method,
    oauth1,
    oauth2,
    preexisting,
    set_connector_lookup,
    soap,
)
from services.auth_methods.oauth2 import OAuth2Params

OAUTH2_OK = {
    "client_id": "my-client",
    "client_secret": "s3cret",
    "authorize_url": "https://provider.example/authorize",
    "token_url": "https://provider.example/token",
}


def errors_of(method_key: str, params: dict, **kwargs: object) -> dict[str, list[str]]:
    with pytest.raises(AuthParamsError) as info:
        get_method(method_key).validate_service_params(params, **kwargs)  # type: ignore[arg-type]
    return info.value.errors


def credential_errors(method_key: str, values: dict) -> dict[str, list[str]]:
    with pytest.raises(AuthParamsError) as info:
        get_method(method_key).validate_credentials(values)
    return info.value.errors


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def catalog_lookup():  # type: ignore[no-untyped-def]
    previous = set_connector_lookup(lambda key: key in {"github", "google-sheets"})
    yield
    set_connector_lookup(previous)


@pytest.fixture
def no_catalog_lookup():  # type: ignore[no-untyped-def]
    """The package on its own, without the catalog check services.apps installs."""
    previous = set_connector_lookup(None)
    yield
    set_connector_lookup(previous)


# ---- registry --------------------------------------------------------------------------------


def test_registry_has_one_method_per_module_in_form_order() -> None:
    keys = ["none", "token", "basic", "digest", "oauth2", "oauth1", "soap", "preexisting"]
    assert list(REGISTRY) == keys
    assert [key for key, _ in choices()] == keys
    assert dict(choices())["oauth2"] == "OAuth 2.0"
    assert all(get_method(k).key == k for k in keys)


def test_unknown_method_is_a_clear_key_error() -> None:
    with pytest.raises(UnknownAuthMethod) as info:
        get_method("kerberos")
    assert isinstance(info.value, KeyError)
    assert str(info.value) == UNKNOWN_METHOD.format(key="kerberos")


def test_only_oauth1_and_soap_are_discouraged_and_say_why() -> None:
    assert {k for k, m in REGISTRY.items() if m.discouraged} == {"oauth1", "soap"}
    assert get_method("oauth1").discouraged_reason == (
        "OAuth 1.0a signs with a shared secret per request, has no scopes or token expiry "
        "and is deprecated by most providers; prefer OAuth2."
    )
    assert get_method("soap").discouraged_reason == (
        "WS-Security UsernameToken sends a password (or a weak digest of it) in every "
        "message; prefer token or OAuth2."
    )


@pytest.mark.parametrize(
    ("key", "fields"),
    [
        ("none", []),
        ("token", ["token"]),
        ("basic", ["username", "password"]),
        ("digest", ["username", "password"]),
        ("soap", ["username", "password"]),
        ("oauth2", []),
        ("oauth1", ["token", "token_secret"]),
        ("preexisting", []),
    ],
)
def test_credential_fields_per_method(key: str, fields: list[str]) -> None:
    assert [f.key for f in get_method(key).credential_fields] == fields


def test_secret_param_keys_and_stored_secrets() -> None:
    assert get_method("oauth2").secret_param_keys == ("client_secret",)
    assert get_method("oauth1").secret_param_keys == ("consumer_secret", "rsa_private_key")
    assert get_method("token").secret_param_keys == ()
    assert set(get_method("oauth2").credential_secret_keys) >= {"access_token", "refresh_token"}
    assert get_method("basic").credential_secret_keys == ("password",)


# ---- discouraged methods need an acknowledgement --------------------------------------------


def test_soap_without_acknowledgement_is_refused() -> None:
    assert errors_of("soap", {}) == {"acknowledge_insecure": [ACK_REQUIRED]}
    assert errors_of("soap", {}, acknowledge_insecure=False) == {
        "acknowledge_insecure": [ACK_REQUIRED]
    }
    params = get_method("soap").validate_service_params({}, acknowledge_insecure=True)
    assert params.password_type == "PasswordText"  # type: ignore[attr-defined]
    assert params.soap_version == "1.1"  # type: ignore[attr-defined]


def test_oauth1_acknowledgement_error_comes_with_the_other_errors() -> None:
    errors = errors_of("oauth1", {"signature_method": "PLAINTEXT"})
    assert errors == {
        "acknowledge_insecure": [ACK_REQUIRED],
        "consumer_key": [base.FIELD_REQUIRED],
        "signature_method": [base.INVALID_CHOICE.format(choices="HMAC-SHA1, RSA-SHA1")],
    }


# ---- token -----------------------------------------------------------------------------------


def test_token_defaults_to_bearer_and_drops_fields_of_other_placements() -> None:
    params = get_method("token").validate_service_params(
        {"placement": "bearer", "header_name": "", "prefix": "Token", "query_name": "key"}
    )
    assert params.model_dump() == {
        "placement": "bearer",
        "header_name": None,
        "prefix": None,
        "query_name": None,
    }


def test_token_header_placement_needs_a_valid_header_name() -> None:
    assert errors_of("token", {"placement": "header"}) == {
        "header_name": [base.HEADER_NAME_REQUIRED]
    }
    assert errors_of("token", {"placement": "header", "header_name": "X Api Key"}) == {
        "header_name": [base.HEADER_NAME_INVALID]
    }
    assert errors_of("token", {"placement": "header", "header_name": "Host"}) == {
        "header_name": [base.HEADER_NAME_RESERVED]
    }
    params = get_method("token").validate_service_params(
        {"placement": "header", "header_name": " X-Api-Key ", "prefix": "Token"}
    )
    assert (params.header_name, params.prefix) == ("X-Api-Key", "Token")  # type: ignore[attr-defined]


def test_token_query_placement_needs_a_name_and_placement_is_a_choice() -> None:
    assert errors_of("token", {"placement": "query"}) == {"query_name": [base.QUERY_NAME_REQUIRED]}
    assert errors_of("token", {"placement": "cookie", "colour": "red"}) == {
        "placement": [base.INVALID_CHOICE.format(choices="bearer, header, query, basic")],
        "colour": [base.UNKNOWN_PARAM],
    }
    assert errors_of("token", {"placement": "header", "header_name": "X-K", "prefix": "a\nb"}) == {
        "prefix": [base.CONTROL_CHARS]
    }


def test_params_must_be_an_object() -> None:
    assert errors_of("token", ["placement", "bearer"]) == {base.NON_FIELD: [base.PARAMS_NOT_OBJECT]}  # type: ignore[arg-type]


def test_token_credentials() -> None:
    method = get_method("token")
    assert method.validate_credentials({"token": "  abc123\n", "subdomain": "acme"}) == {
        "token": "abc123"
    }
    assert credential_errors("token", {}) == {"token": [base.FIELD_REQUIRED]}
    assert credential_errors("token", {"token": "   "}) == {"token": [base.FIELD_REQUIRED]}
    assert credential_errors("token", {"token": "tök"}) == {"token": [base.TOKEN_NOT_PRINTABLE]}
    assert credential_errors("token", {"token": 42}) == {"token": [base.EXPECTED_TEXT]}
    assert credential_errors("token", "abc") == {base.NON_FIELD: [base.CREDENTIALS_NOT_OBJECT]}  # type: ignore[arg-type]


# ---- basic / digest --------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["basic", "digest", "none"])
def test_methods_without_params_refuse_any(key: str) -> None:
    assert get_method(key).validate_service_params({}).model_dump() == {}
    assert errors_of(key, {"realm": "x"}) == {"realm": [base.UNKNOWN_PARAM]}


def test_basic_credentials_keep_password_spaces_and_refuse_colon_in_user() -> None:
    cleaned = get_method("basic").validate_credentials({"username": " ann ", "password": " p w "})
    assert cleaned == {"username": "ann", "password": " p w "}
    assert credential_errors("basic", {"username": "a:b", "password": "x"}) == {
        "username": [basic.USERNAME_HAS_COLON]
    }
    assert credential_errors("digest", {"username": "ann"}) == {"password": [base.FIELD_REQUIRED]}
    assert credential_errors("digest", {"username": "ann", "password": "a\r\nb"}) == {
        "password": [base.CONTROL_CHARS]
    }


# ---- oauth2 ----------------------------------------------------------------------------------


def test_oauth2_defaults_and_client_secret_kept_out_of_the_model() -> None:
    method = get_method("oauth2")
    params = method.validate_service_params(OAUTH2_OK)
    assert isinstance(params, OAuth2Params)
    assert "client_secret" not in params.model_dump()
    assert params.pkce is True
    assert params.grant_type == "authorization_code"
    assert params.token_endpoint_auth == "basic"
    assert params.scope_separator == " "
    assert params.expired_status_codes == [401]
    assert params.token_placement == "bearer"
    assert method.split_params(OAUTH2_OK)[1] == {"client_secret": "s3cret"}


def test_oauth2_needs_a_token_url() -> None:
    params = {k: v for k, v in OAUTH2_OK.items() if k != "token_url"}
    assert errors_of("oauth2", params) == {"token_url": ["OAuth2 needs a token URL"]}
    assert oauth2.TOKEN_URL_REQUIRED == "OAuth2 needs a token URL"


def test_oauth2_authorize_url_required_for_code_grant_only() -> None:
    params = {k: v for k, v in OAUTH2_OK.items() if k != "authorize_url"}
    assert errors_of("oauth2", params) == {"authorize_url": [oauth2.AUTHORIZE_URL_REQUIRED]}
    ok = get_method("oauth2").validate_service_params(
        {**params, "grant_type": "client_credentials"}
    )
    assert ok.grant_type == "client_credentials"  # type: ignore[attr-defined]


def test_oauth2_secret_rules() -> None:
    cc = {"client_id": "c", "token_url": "https://p.example/t", "grant_type": "client_credentials"}
    assert errors_of("oauth2", cc) == {"client_secret": [oauth2.CLIENT_SECRET_REQUIRED]}
    # editing: a blank secret in the form keeps the stored one
    get_method("oauth2").validate_service_params(
        {**cc, "client_secret": ""}, existing_secrets={"client_secret": "stored"}
    )
    public = {k: v for k, v in OAUTH2_OK.items() if k != "client_secret"}
    get_method("oauth2").validate_service_params(public)  # public client with PKCE: fine
    assert errors_of("oauth2", {**public, "pkce": False}) == {
        "pkce": [oauth2.PUBLIC_CLIENT_NEEDS_PKCE]
    }
    assert errors_of("oauth2", {**OAUTH2_OK, "client_secret": 7}) == {
        "client_secret": [base.EXPECTED_TEXT]
    }


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://provider.example/token", base.URL_INVALID),
        ("https:///token", base.URL_INVALID),
        ("provider.example/token", base.URL_INVALID),
        ("https://user:pw@provider.example/token", base.URL_HAS_CREDENTIALS),
        ("https://provider.example/token#frag", base.URL_HAS_FRAGMENT),
        ("https://provider.example:99999/token", base.URL_INVALID),
    ],
)
def test_oauth2_urls_must_be_http_without_credentials(url: str, message: str) -> None:
    assert errors_of("oauth2", {**OAUTH2_OK, "token_url": url}) == {"token_url": [message]}


def test_oauth2_urls_may_hold_service_templates() -> None:
    params = get_method("oauth2").validate_service_params(
        {**OAUTH2_OK, "token_url": "https://{{service.subdomain}}.zendesk.com/oauth/tokens"}
    )
    assert params.token_url == "https://{{service.subdomain}}.zendesk.com/oauth/tokens"  # type: ignore[attr-defined]


def test_oauth2_scopes_from_string_or_list() -> None:
    method = get_method("oauth2")
    p1 = method.validate_service_params({**OAUTH2_OK, "scopes": " read  write\tadmin "})
    assert p1.scopes == ["read", "write", "admin"]  # type: ignore[attr-defined]
    p2 = method.validate_service_params(
        {**OAUTH2_OK, "scopes": "repo, gist", "scope_separator": ","}
    )
    assert p2.scopes == ["repo", "gist"]  # type: ignore[attr-defined]
    p3 = method.validate_service_params({**OAUTH2_OK, "scopes": ["openid", " email", ""]})
    assert p3.scopes == ["openid", "email"]  # type: ignore[attr-defined]
    assert errors_of("oauth2", {**OAUTH2_OK, "scopes": ["a b"]}) == {
        "scopes": [oauth2.SCOPE_INVALID]
    }
    assert errors_of("oauth2", {**OAUTH2_OK, "scope_separator": "and"}) == {
        "scope_separator": [oauth2.SCOPE_SEPARATOR_INVALID]
    }


def test_oauth2_extra_params_and_status_codes() -> None:
    errors = errors_of(
        "oauth2",
        {
            **OAUTH2_OK,
            "extra_authorize_params": {"prompt": "consent", "state": "x", "client_id": "y"},
            "extra_token_params": {"grant_type": "password"},
            "expired_status_codes": [401, 200],
        },
    )
    assert errors == {
        "extra_authorize_params": [oauth2.PARAM_RESERVED.format(names="client_id, state")],
        "extra_token_params": [oauth2.PARAM_RESERVED.format(names="grant_type")],
        "expired_status_codes": [oauth2.STATUS_CODE_INVALID],
    }
    params = get_method("oauth2").validate_service_params(
        {**OAUTH2_OK, "expired_status_codes": "401, 403", "extra_token_params": {"resource": "r"}}
    )
    assert params.expired_status_codes == [401, 403]  # type: ignore[attr-defined]
    assert get_method("oauth2").is_expired_response(params, 403)
    assert not get_method("oauth2").is_expired_response(params, 500)
    assert not get_method("token").is_expired_response({}, 401)


def test_oauth2_reports_type_errors_and_cross_field_errors_in_one_round() -> None:
    errors = errors_of("oauth2", {"client_id": "", "pkce": "maybe", "token_url": "nope"})
    assert errors == {
        "client_id": [base.FIELD_REQUIRED],
        "pkce": [base.EXPECTED_BOOLEAN],
        "token_url": [base.URL_INVALID],
    }
    errors = errors_of("oauth2", {"client_id": "c", "pkce": "maybe"})
    assert errors == {
        "pkce": [base.EXPECTED_BOOLEAN],
        "token_url": [oauth2.TOKEN_URL_REQUIRED],
        "authorize_url": [oauth2.AUTHORIZE_URL_REQUIRED],
    }


def test_oauth2_header_placement_follows_token_rules() -> None:
    assert errors_of("oauth2", {**OAUTH2_OK, "token_placement": "header"}) == {
        "header_name": [base.HEADER_NAME_REQUIRED]
    }
    assert errors_of("oauth2", {**OAUTH2_OK, "token_placement": "basic"}) == {
        "token_placement": [base.INVALID_CHOICE.format(choices="bearer, header, query")]
    }


def test_parse_params_loads_stored_json_without_acknowledgement() -> None:
    method = get_method("soap")
    assert method.parse_params({"soap_version": "1.2"}).soap_version == "1.2"  # type: ignore[attr-defined]
    with pytest.raises(AuthParamsError) as info:
        method.parse_params({"soap_version": "2.0"})
    assert info.value.errors == {"soap_version": [base.INVALID_CHOICE.format(choices="1.1, 1.2")]}
    assert (
        get_method("soap")
        .validate_service_params({"soap_version": 1.2}, acknowledge_insecure=True)
        .soap_version
        == "1.2"
    )  # type: ignore[attr-defined]


# ---- oauth1 ----------------------------------------------------------------------------------


def test_oauth1_secret_requirements(rsa_pem: str) -> None:
    ack = {"acknowledge_insecure": True}
    assert errors_of("oauth1", {"consumer_key": "ck"}, **ack) == {
        "consumer_secret": [oauth1.CONSUMER_SECRET_REQUIRED]
    }
    rsa_params = {"consumer_key": "ck", "signature_method": "RSA-SHA1"}
    assert errors_of("oauth1", rsa_params, **ack) == {"rsa_private_key": [oauth1.RSA_KEY_REQUIRED]}
    assert errors_of("oauth1", {**rsa_params, "rsa_private_key": "-----BEGIN nonsense"}, **ack) == {
        "rsa_private_key": [oauth1.RSA_KEY_INVALID]
    }
    params = get_method("oauth1").validate_service_params(
        {**rsa_params, "rsa_private_key": rsa_pem, "realm": "photos"}, **ack
    )
    assert params.model_dump() == {
        "consumer_key": "ck",
        "signature_method": "RSA-SHA1",
        "realm": "photos",
        "signature_type": "header",
    }


def test_oauth1_credentials_are_optional_but_a_secret_needs_its_token() -> None:
    assert get_method("oauth1").validate_credentials({}) == {}
    assert credential_errors("oauth1", {"token_secret": "ts"}) == {
        "token_secret": [oauth1.TOKEN_SECRET_WITHOUT_TOKEN]
    }


# ---- soap / preexisting ----------------------------------------------------------------------


def test_soap_password_type_is_a_choice() -> None:
    assert errors_of("soap", {"password_type": "Plain"}, acknowledge_insecure=True) == {
        "password_type": [base.INVALID_CHOICE.format(choices="PasswordText, PasswordDigest")]
    }
    assert soap.password_digest(b"\x00" * 16, "2025-01-01T00:00:00Z", "pw") == (
        base64.b64encode(hashlib.sha1(b"\x00" * 16 + b"2025-01-01T00:00:00Zpw").digest()).decode()  # noqa: S324
    )


@pytest.mark.usefixtures("no_catalog_lookup")
def test_preexisting_by_default_accepts_any_slug() -> None:
    method = get_method("preexisting")
    assert method.validate_service_params({"connector": "anything-1"}).connector == "anything-1"  # type: ignore[attr-defined]
    assert errors_of("preexisting", {}) == {"connector": [base.FIELD_REQUIRED]}
    assert errors_of("preexisting", {"connector": "not a slug!"}) == {
        "connector": [preexisting.CONNECTOR_INVALID]
    }
    assert method.uses_connector is True


@pytest.mark.usefixtures("catalog_lookup")
def test_preexisting_uses_the_injected_catalog_lookup() -> None:
    method = get_method("preexisting")
    assert method.validate_service_params({"connector": "github"}).connector == "github"  # type: ignore[attr-defined]
    assert errors_of("preexisting", {"connector": "gitlab"}) == {
        "connector": [preexisting.CONNECTOR_UNKNOWN]
    }


# ---- secret values for redaction -------------------------------------------------------------


def test_secret_values_cover_every_encoded_form() -> None:
    basic_values = get_method("basic").secret_values({}, {"username": "u", "password": "p"})
    assert basic_values == ["p", "Basic dTpw", "dTpw"]
    token_values = get_method("token").secret_values(
        {"placement": "query", "query_name": "k"}, {"token": "a/b+c"}
    )
    assert token_values == ["a/b+c", "a%2Fb%2Bc", "Basic YS9iK2M6", "YS9iK2M6"]
    # redaction never raises, even on params that no longer validate
    assert get_method("token").secret_values({"placement": "?"}, {"token": "t"})[0] == "t"
    assert "s" in get_method("oauth2").secret_values({}, {"client_secret": "s"})
    oauth_values = get_method("oauth2").secret_values(
        {k: v for k, v in OAUTH2_OK.items() if k != "client_secret"},
        {"access_token": "at", "refresh_token": "rt", "client_secret": "s3cret"},
    )
    header = oauth2.client_basic_header("my-client", "s3cret")
    assert {"at", "rt", "s3cret", header, header.removeprefix("Basic ")} <= set(oauth_values)
    oauth1_values = get_method("oauth1").secret_values(
        {"consumer_key": "ck"}, {"consumer_secret": "cs", "token": "t", "token_secret": "ts"}
    )
    assert set(oauth1_values) == {"cs", "t", "ts"}
