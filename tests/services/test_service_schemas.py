"""The shared service schemas (auth params, extra params, test request, pagination)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.schemas import (
    ERR_AUTHORIZE_URL_REQUIRED,
    ERR_PAGINATION_MISSING,
    ERR_PARAM_KEY_RESERVED,
    ERR_PATH_SLASH,
    ERR_RESERVED_OAUTH_PARAM,
    ERR_SECRET_DEFAULT,
    ERR_TOKEN_FIELD_UNUSED,
    ERR_TOKEN_HEADER_NAME,
    ERR_URL_SCHEME,
    ExtraParam,
    OAuth2Params,
    Pagination,
    TestRequest,
    TokenParams,
)


def messages(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str, str]]:
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in exc.value.errors()]


def test_oauth2_params_fill_defaults_and_allow_http_for_the_sandbox() -> None:
    params = OAuth2Params(
        authorize_url="http://127.0.0.1:8000/o/authorize/",
        token_url="http://127.0.0.1:8000/o/token/",
        scopes=["read", "write"],
        token_placement="basic",  # type: ignore[arg-type]
    )
    assert params.scope_separator == " "
    assert params.expired_status_codes == [401]
    assert params.token_endpoint_auth == "body"
    assert params.scope_string() == "read write"
    assert params.token_placement.placement == "basic"


def test_oauth2_query_placement_still_needs_a_name() -> None:
    with pytest.raises(ValidationError) as info:
        OAuth2Params(authorize_url="https://a.test/a", token_url="https://a.test/t",
                     token_placement={"placement": "query"})  # type: ignore[arg-type]  # fmt: skip
    assert messages(info)[0][0] == "token_placement"


def test_authorization_code_grant_needs_an_authorize_url() -> None:
    with pytest.raises(ValidationError) as info:
        OAuth2Params(token_url="https://a.test/token")
    assert messages(info) == [("", ERR_AUTHORIZE_URL_REQUIRED)]
    client_credentials = OAuth2Params(token_url="https://a.test/t", grant_type="client_credentials")
    assert client_credentials.authorize_url is None


def test_extra_authorize_params_cannot_override_the_flow() -> None:
    with pytest.raises(ValidationError) as info:
        OAuth2Params(authorize_url="https://a.test/a", token_url="https://a.test/t",
                     extra_authorize_params={"redirect_uri": "https://evil.test"})  # fmt: skip
    assert messages(info) == [
        ("extra_authorize_params", ERR_RESERVED_OAUTH_PARAM.format(key="redirect_uri"))
    ]


def test_oauth_urls_must_be_http_or_https() -> None:
    with pytest.raises(ValidationError) as info:
        OAuth2Params(authorize_url="ftp://a.test/a", token_url="https://a.test/t")
    assert messages(info) == [("authorize_url", ERR_URL_SCHEME)]


def test_token_header_placement_needs_a_header_name() -> None:
    with pytest.raises(ValidationError) as info:
        TokenParams(placement="header")
    assert messages(info) == [("", ERR_TOKEN_HEADER_NAME)]
    assert TokenParams(placement="header", header_name="X-Api-Key", prefix="Token ").prefix == (
        "Token"
    )


def test_token_fields_for_another_placement_are_refused() -> None:
    with pytest.raises(ValidationError) as info:
        TokenParams(placement="bearer", query_name="api_key")
    assert messages(info) == [
        ("", ERR_TOKEN_FIELD_UNUSED.format(field="query_name", placement="query"))
    ]


def test_extra_param_rules() -> None:
    with pytest.raises(ValidationError) as info:
        ExtraParam(key="password", label="Password")
    assert messages(info) == [("key", ERR_PARAM_KEY_RESERVED.format(key="password"))]
    with pytest.raises(ValidationError) as info:
        ExtraParam(key="Sub-domain", label="Subdomain")
    assert messages(info)[0][0] == "key"
    with pytest.raises(ValidationError) as info:
        ExtraParam(key="api_secret", label="Secret", secret=True, default="x")
    assert messages(info) == [("", ERR_SECRET_DEFAULT)]
    param = ExtraParam(key="subdomain", label="Subdomain", pattern="^[a-z]+$")
    assert param.matches("acme") and not param.matches("acme.evil")


def test_test_request_path_must_be_a_path() -> None:
    with pytest.raises(ValidationError) as info:
        TestRequest(path="me")
    assert messages(info) == [("path", ERR_PATH_SLASH)]
    assert TestRequest(method="post", path="/users/me").method == "POST"  # type: ignore[arg-type]


def test_pagination_needs_the_fields_of_its_kind() -> None:
    with pytest.raises(ValidationError) as info:
        Pagination(kind="cursor", cursor_path="next_page.offset")
    assert messages(info) == [
        ("", ERR_PAGINATION_MISSING.format(field="cursor_param", kind="cursor"))
    ]
    header = Pagination(kind="cursor", cursor_path="header:X-Next-Cursor", cursor_param="cursor")
    assert header.cursor_path == "header:X-Next-Cursor"
    with pytest.raises(ValidationError):
        Pagination(kind="link", cursor_path="next..page")
