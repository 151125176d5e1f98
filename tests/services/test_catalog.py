"""The connector catalog: shipped files load, broken files fail naming file and field."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from services.auth_methods import AuthParamsError, get_method
from services.auth_methods.base import QUERY_NAME_REQUIRED, REGISTRATION_IN_CONNECTOR
from services.auth_methods.oauth2 import TOKEN_URL_REQUIRED, OAuth2Params
from services.auth_methods.preexisting import CONNECTOR_UNKNOWN
from services.auth_methods.token import TokenParams
from services.catalog import (
    CATALOG_DIR,
    ERR_DOCS_URL_TEMPLATE,
    ERR_KEY_IN_FILE,
    CatalogError,
    Connector,
    get_connector,
    load_catalog,
    load_catalog_dir,
    load_connector_file,
)
from services.schemas import (
    ERR_HEADER_AUTHORIZATION,
    ERR_PARAM_DUPLICATE,
    ERR_PATTERN_MISMATCH,
    ERR_TEMPLATE_MALFORMED,
    ERR_TEMPLATE_NAMESPACE,
    ERR_TEMPLATE_OPTIONAL,
    ERR_TEMPLATE_UNKNOWN,
    ERR_URL_HTTPS,
    TEMPLATE_EXAMPLE,
)

NAMED = {
    "slack", "spotify", "airtable", "github", "google", "microsoft-graph", "hubspot",
    "salesforce", "zendesk", "stripe", "notion", "shopify", "atlassian", "dropbox", "asana",
}  # fmt: skip

VALID_OAUTH2 = """\
name = "Example"
base_url = "https://api.example.com/v1"
auth_method = "oauth2"
docs_url = "https://docs.example.com/"

[auth_params]
authorize_url = "https://example.com/oauth/authorize"
token_url = "https://example.com/oauth/token"
scopes = ["read"]

[test_request]
method = "GET"
path = "/me"
"""

VALID_TOKEN = """\
name = "Example"
base_url = "{base_url}"
auth_method = "token"
docs_url = "https://docs.example.com/"

[auth_params]
placement = "bearer"

[test_request]
path = "/me"
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(path: Path) -> str:
    with pytest.raises(CatalogError) as info:
        load_connector_file(path)
    return str(info.value)


def test_every_shipped_file_loads_under_its_file_name() -> None:
    files = sorted(CATALOG_DIR.glob("*.toml"))
    assert len(files) >= 16
    for file in files:
        connector = load_connector_file(file)
        assert connector.key == file.stem
        assert connector.base_url.startswith("https://")
        assert connector.docs_url.startswith("https://")
    assert set(load_catalog()) == {f.stem for f in files}


def test_catalog_has_the_named_connectors() -> None:
    catalog = load_catalog()
    assert len(catalog) >= 15
    assert NAMED <= set(catalog)


def test_load_catalog_is_cached() -> None:
    assert load_catalog() is load_catalog()


def test_get_connector_finds_a_key_and_answers_none_otherwise() -> None:
    slack = get_connector("slack")
    assert isinstance(slack, Connector)
    assert slack.base_url == "https://slack.com/api"
    assert slack.test_request.path == "/auth.test"
    assert get_connector("no-such-connector") is None


def test_spotify_is_oauth2_with_pkce_on_accounts_spotify_com() -> None:
    spotify = get_connector("spotify")
    assert spotify is not None
    assert spotify.auth_method == "oauth2"
    params = spotify.typed_auth_params()
    assert isinstance(params, OAuth2Params)
    assert params.pkce is True
    assert params.token_url == "https://accounts.spotify.com/api/token"
    assert params.authorize_url == "https://accounts.spotify.com/authorize"
    assert spotify.base_url == "https://api.spotify.com/v1"
    assert (spotify.test_request.method, spotify.test_request.path) == ("GET", "/me")


def test_airtable_is_a_bearer_token() -> None:
    airtable = get_connector("airtable")
    assert airtable is not None
    assert airtable.auth_method == "token"
    params = airtable.typed_auth_params()
    assert isinstance(params, TokenParams)
    assert params.placement == "bearer"
    assert airtable.test_request.path == "/meta/whoami"


def test_provider_specifics_are_shipped() -> None:
    catalog = load_catalog()
    google = catalog["google"].typed_auth_params()
    assert isinstance(google, OAuth2Params)
    assert google.extra_authorize_params == {"access_type": "offline", "prompt": "consent"}
    graph = catalog["microsoft-graph"]
    assert "{{auth.tenant}}" in str(graph.auth_params["token_url"])
    assert [(p.key, p.default) for p in graph.extra_params] == [("tenant", "common")]
    assert "offline_access" in graph.auth_params["scopes"]
    assert catalog["notion"].auth_params["token_endpoint_auth"] == "basic"
    assert catalog["notion"].default_headers == {"Notion-Version": "2022-06-28"}
    shopify = catalog["shopify"].typed_auth_params()
    assert isinstance(shopify, TokenParams)
    assert (shopify.placement, shopify.header_name) == ("header", "X-Shopify-Access-Token")
    assert catalog["atlassian"].auth_params["extra_authorize_params"]["audience"] == (
        "api.atlassian.com"
    )
    assert catalog["dropbox"].test_request.method == "POST"
    stripe_pages = catalog["stripe"].pagination
    assert stripe_pages is not None and stripe_pages.cursor_param == "starting_after"
    asana_pages = catalog["asana"].pagination
    assert asana_pages is not None and asana_pages.cursor_path == "next_page.offset"
    zendesk = catalog["zendesk"]
    assert zendesk.template_keys() == {"subdomain"}
    assert zendesk.extra_params[0].required is True


def test_every_shipped_oauth2_connector_uses_https_endpoints() -> None:
    for connector in load_catalog().values():
        if connector.auth_method == "oauth2":
            params = connector.typed_auth_params()
            assert isinstance(params, OAuth2Params)
            assert params.token_url.startswith("https://"), connector.key
            assert (params.authorize_url or "").startswith("https://"), connector.key


def test_valid_file_in_a_directory_loads(tmp_path: Path) -> None:
    write(tmp_path, "example.toml", VALID_OAUTH2)
    write(tmp_path, "_draft.toml", "this is not toml = [")
    catalog = load_catalog_dir(tmp_path)
    assert list(catalog) == ["example"]
    assert catalog["example"].auth_params["expired_status_codes"] == [401]


def test_missing_field_names_the_file_and_the_field_path(tmp_path: Path) -> None:
    broken = write(
        tmp_path,
        "slack.toml",
        VALID_OAUTH2.replace('token_url = "https://example.com/oauth/token"\n', ""),
    )
    with pytest.raises(CatalogError) as info:
        load_catalog_dir(tmp_path)
    assert str(info.value) == f"{broken}: auth_params.token_url: {TOKEN_URL_REQUIRED}"
    assert info.value.path == broken


def test_shipped_paths_are_shown_relative_to_the_repository() -> None:
    error = CatalogError(CATALOG_DIR / "slack.toml", [("auth_params.token_url", "Field required")])
    assert str(error) == "services/catalog/slack.toml: auth_params.token_url: Field required"


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    broken = write(tmp_path, "bad.toml", 'name = "unterminated\n')
    message = error_for(broken)
    assert message.startswith(f"{broken}: invalid TOML: ")


def test_unknown_template_key_fails_naming_the_key(tmp_path: Path) -> None:
    text = VALID_TOKEN.format(base_url="https://{{auth.region}}.example.com")
    message = error_for(write(tmp_path, "regional.toml", text))
    expected = ERR_TEMPLATE_UNKNOWN.format(ref="auth.region", key="region")
    assert f"base_url: {expected}" in message
    assert "region" in expected


def test_unknown_template_key_in_an_oauth_url_fails(tmp_path: Path) -> None:
    text = VALID_OAUTH2.replace("https://example.com/oauth/token", "https://{{auth.tenant}}/token")
    message = error_for(write(tmp_path, "tenanted.toml", text))
    expected = ERR_TEMPLATE_UNKNOWN.format(ref="auth.tenant", key="tenant")
    assert f"auth_params.token_url: {expected}" in message


def test_declared_template_key_is_accepted(tmp_path: Path) -> None:
    text = VALID_TOKEN.format(base_url="https://{{auth.region}}.example.com") + (
        '\n[[extra_params]]\nkey = "region"\nlabel = "Region"\nrequired = true\n'
        'pattern = "^[a-z]{2}$"\nexample = "eu"\n'
    )
    connector = load_connector_file(write(tmp_path, "regional.toml", text))
    assert connector.template_keys() == {"region"}


def test_template_on_an_optional_param_without_default_fails(tmp_path: Path) -> None:
    text = VALID_TOKEN.format(base_url="https://{{auth.region}}.example.com") + (
        '\n[[extra_params]]\nkey = "region"\nlabel = "Region"\n'
    )
    message = error_for(write(tmp_path, "regional.toml", text))
    assert ERR_TEMPLATE_OPTIONAL.format(ref="auth.region", key="region") in message


def test_service_templates_are_refused_in_the_catalog(tmp_path: Path) -> None:
    text = VALID_TOKEN.format(base_url="https://{{service.host}}")
    message = error_for(write(tmp_path, "svc.toml", text))
    assert ERR_TEMPLATE_NAMESPACE.format(ref="service.host", example=TEMPLATE_EXAMPLE) in message


def test_malformed_template_fails(tmp_path: Path) -> None:
    text = VALID_TOKEN.format(base_url="https://{{ auth.Region }}.example.com")
    message = error_for(write(tmp_path, "typo.toml", text))
    expected = ERR_TEMPLATE_MALFORMED.format(template="{{ auth.Region }}", example=TEMPLATE_EXAMPLE)
    assert f"base_url: {expected}" in message


def test_docs_url_cannot_be_templated(tmp_path: Path) -> None:
    text = VALID_OAUTH2.replace("https://docs.example.com/", "https://{{auth.site}}/docs")
    message = error_for(write(tmp_path, "docs.toml", text))
    assert f"docs_url: {ERR_DOCS_URL_TEMPLATE}" in message


def test_http_base_url_fails(tmp_path: Path) -> None:
    text = VALID_TOKEN.format(base_url="http://api.example.com")
    message = error_for(write(tmp_path, "plain.toml", text))
    assert message == f"{tmp_path / 'plain.toml'}: base_url: {ERR_URL_HTTPS}"


def test_http_oauth_endpoint_fails_in_the_catalog(tmp_path: Path) -> None:
    text = VALID_OAUTH2.replace("https://example.com/oauth/token", "http://example.com/token")
    message = error_for(write(tmp_path, "plain.toml", text))
    assert f"auth_params.token_url: {ERR_URL_HTTPS}" in message


def test_unknown_field_fails(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "extra.toml", 'colour = "blue"\n' + VALID_OAUTH2))
    assert f"{tmp_path / 'extra.toml'}: colour: Extra inputs are not permitted" in message


def test_unknown_auth_param_fails(tmp_path: Path) -> None:
    text = VALID_OAUTH2.replace('scopes = ["read"]', 'scopes = ["read"]\nclient_secret = "x"')
    message = error_for(write(tmp_path, "leaky.toml", text))
    assert "auth_params.client_secret: Extra inputs are not permitted" in message


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    text = VALID_OAUTH2.replace('name = "Example"\n', "").replace(
        'path = "/me"', 'path = "/me"\ncolour = 1'
    )
    message = error_for(write(tmp_path, "many.toml", text))
    assert "name: Field required" in message
    assert "test_request.colour: Extra inputs are not permitted" in message


def test_key_in_the_file_is_refused(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "keyed.toml", 'key = "other"\n' + VALID_OAUTH2))
    assert message == f"{tmp_path / 'keyed.toml'}: key: {ERR_KEY_IN_FILE}"


def test_bad_file_name_is_refused_as_a_key(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "Bad Name.toml", VALID_OAUTH2))
    assert ": key: String should match pattern" in message


def test_invalid_extra_param_pattern_fails(tmp_path: Path) -> None:
    text = VALID_OAUTH2 + '\n[[extra_params]]\nkey = "site"\nlabel = "Site"\npattern = "(["\n'
    message = error_for(write(tmp_path, "pattern.toml", text))
    assert "extra_params.0.pattern: is not a valid regular expression" in message


def test_default_must_match_the_pattern(tmp_path: Path) -> None:
    text = VALID_OAUTH2 + (
        '\n[[extra_params]]\nkey = "site"\nlabel = "Site"\npattern = "^[a-z]+$"\ndefault = "A1"\n'
    )
    message = error_for(write(tmp_path, "pattern.toml", text))
    assert ERR_PATTERN_MISMATCH.format(value="A1", pattern="^[a-z]+$") in message


def test_duplicate_extra_param_keys_fail(tmp_path: Path) -> None:
    param = '\n[[extra_params]]\nkey = "site"\nlabel = "Site"\n'
    message = error_for(write(tmp_path, "dup.toml", VALID_OAUTH2 + param + param))
    assert f"extra_params.1.key: {ERR_PARAM_DUPLICATE.format(key='site')}" in message


def test_authorization_default_header_is_refused(tmp_path: Path) -> None:
    text = VALID_OAUTH2 + '\n[default_headers]\nAuthorization = "Bearer x"\n'
    message = error_for(write(tmp_path, "hdr.toml", text))
    assert f"default_headers: {ERR_HEADER_AUTHORIZATION}" in message


def test_json_files_load_too(tmp_path: Path) -> None:
    data = {
        "name": "Json",
        "base_url": "https://api.example.com/",
        "auth_method": "none",
        "docs_url": "https://docs.example.com/",
        "test_request": {"method": "get", "path": "/status"},
    }
    write(tmp_path, "json-api.json", json.dumps(data))
    connector = load_catalog_dir(tmp_path)["json-api"]
    assert connector.base_url == "https://api.example.com"
    assert connector.test_request.method == "GET"
    assert connector.auth_params == {}


def test_same_key_in_toml_and_json_fails(tmp_path: Path) -> None:
    write(tmp_path, "twice.toml", VALID_OAUTH2)
    data = {"name": "Twice", "base_url": "https://a.example.com", "auth_method": "none",
            "docs_url": "https://a.example.com", "test_request": {"path": "/"}}  # fmt: skip
    write(tmp_path, "twice.json", json.dumps(data))
    with pytest.raises(CatalogError, match="twice.toml: key: two catalog files define this key"):
        load_catalog_dir(tmp_path)


# ---- one params shape: the auth method's, for a connector and for a Service -----------------


def test_every_connector_goes_into_a_service_unchanged() -> None:
    for connector in load_catalog().values():
        method = get_method(connector.auth_method)
        registration = {"client_id": "my-app"} if connector.auth_method == "oauth2" else {}
        secrets = {"client_secret": "s3cret"} if connector.auth_method == "oauth2" else {}
        model = method.validate_service_params({**connector.auth_params, **registration, **secrets})
        stored = model.model_dump(mode="json", exclude_none=True)
        assert stored == {**connector.auth_params, **registration}, connector.key


def test_oauth2_files_state_pkce_and_token_endpoint_auth_explicitly() -> None:
    # The two settings whose defaults once differed between two models: each file says its own.
    for file in sorted(CATALOG_DIR.glob("*.toml")):
        data = tomllib.loads(file.read_text(encoding="utf-8"))
        if data["auth_method"] == "oauth2":
            assert {"pkce", "token_endpoint_auth"} <= set(data["auth_params"]), file.name


def test_connector_params_have_no_client_id() -> None:
    spotify = get_connector("spotify")
    assert spotify is not None
    assert "client_id" not in spotify.auth_params
    params = spotify.typed_auth_params()
    assert isinstance(params, OAuth2Params)
    assert params.client_id is None
    assert params.token_endpoint_auth == "basic"


def test_client_id_in_a_catalog_file_is_refused(tmp_path: Path) -> None:
    text = VALID_OAUTH2.replace('scopes = ["read"]', 'scopes = ["read"]\nclient_id = "shared"')
    message = error_for(write(tmp_path, "leaky.toml", text))
    assert f"auth_params.client_id: {REGISTRATION_IN_CONNECTOR}" in message


def test_nested_token_placement_is_not_the_shape(tmp_path: Path) -> None:
    text = VALID_OAUTH2 + '\n[auth_params.token_placement]\nplacement = "bearer"\n'
    message = error_for(write(tmp_path, "nested.toml", text))
    assert "auth_params.token_placement: " in message


def test_catalog_uses_the_methods_own_checks(tmp_path: Path) -> None:
    text = VALID_OAUTH2.replace('scopes = ["read"]', 'scopes = ["read"]\ntoken_placement = "query"')
    message = error_for(write(tmp_path, "query.toml", text))
    assert f"auth_params.query_name: {QUERY_NAME_REQUIRED}" in message


def test_a_connector_cannot_be_preexisting(tmp_path: Path) -> None:
    text = VALID_TOKEN.format(base_url="https://api.example.com").replace(
        'auth_method = "token"', 'auth_method = "preexisting"'
    )
    message = error_for(write(tmp_path, "loop.toml", text))
    assert "auth_method: 'preexisting' is not an auth method a connector can use" in message


def test_preexisting_services_are_checked_against_the_shipped_catalog() -> None:
    method = get_method("preexisting")
    assert method.validate_service_params({"connector": "github"}).connector == "github"  # type: ignore[attr-defined]
    with pytest.raises(AuthParamsError) as info:
        method.validate_service_params({"connector": "no-such-connector"})
    assert info.value.errors == {"connector": [CONNECTOR_UNKNOWN]}
