"""OpenAPI import: small documents of our own for each rule, then real published documents."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from services import openapi_import as oi
from services.openapi_import import OpenAPIImportError, parse_openapi

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "openapi"


def _doc(**top: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "Demo API", "description": "  A demo.  "},
        "servers": [{"url": "https://api.example.com/v1"}],
        "paths": {"/things": {"get": {"summary": "List things", "operationId": "listThings"}}},
    }
    doc.update(top)
    return doc


def _schemes(schemes: dict[str, Any], **top: Any) -> dict[str, Any]:
    return _doc(components={"securitySchemes": schemes}, **top)


def _json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2)


def _yaml(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


def _error(text: str | bytes, **kwargs: Any) -> OpenAPIImportError:
    with pytest.raises(OpenAPIImportError) as info:
        parse_openapi(text, **kwargs)
    return info.value


# --- security schemes ----------------------------------------------------------------------

BEARER_YAML = """\
openapi: 3.1.0
info:
  title: Bearer API
servers:
  - url: https://api.example.com/
security:
  - tokenAuth: []
components:
  securitySchemes:
    tokenAuth:
      type: http
      scheme: Bearer
      bearerFormat: JWT
paths:
  /me:
    get:
      summary: Who am I
"""


def test_http_bearer_from_yaml_is_a_bearer_token_service() -> None:
    result = parse_openapi(BEARER_YAML)
    assert result.name == "Bearer API"
    assert result.base_url == "https://api.example.com"
    assert result.auth_method == "token"
    assert result.auth_params == {"placement": "bearer"}
    assert result.alternatives == []
    assert result.warnings == []


def test_http_basic_from_json_is_basic() -> None:
    text = _json(_schemes({"basicAuth": {"type": "http", "scheme": "basic"}}))
    result = parse_openapi(text.encode())
    assert (result.auth_method, result.auth_params) == ("basic", {})


def test_api_key_in_header_is_a_header_token() -> None:
    doc = _schemes({"key": {"type": "apiKey", "in": "header", "name": "X-API-Key"}})
    result = parse_openapi(_yaml(doc))
    assert result.auth_method == "token"
    assert result.auth_params == {"placement": "header", "header_name": "X-API-Key"}


def test_api_key_in_query_is_a_query_token() -> None:
    doc = _schemes({"key": {"type": "apiKey", "in": "query", "name": "api_key"}})
    result = parse_openapi(_json(doc))
    assert result.auth_method == "token"
    assert result.auth_params == {"placement": "query", "query_name": "api_key"}


def test_api_key_in_cookie_warns_and_falls_back_to_none() -> None:
    doc = _schemes({"session": {"type": "apiKey", "in": "cookie", "name": "sid"}})
    result = parse_openapi(_yaml(doc))
    assert (result.auth_method, result.auth_params) == ("none", {})
    assert result.warnings == [oi.COOKIE_UNSUPPORTED.format(name="session")]
    assert result.alternatives == ["session: API key in cookie 'sid'"]


OAUTH_CODE_YAML = """\
openapi: 3.0.1
info: {title: OAuth API}
servers:
  - url: https://{tenant}.example.com/api
    variables:
      tenant: {default: acme}
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        authorizationCode:
          authorizationUrl: https://login.example.com/authorize
          tokenUrl: /oauth/token
          scopes:
            read: Read things
            write: Write things
        clientCredentials:
          tokenUrl: https://login.example.com/token
          scopes: {}
paths: {}
"""


def test_oauth2_authorization_code_with_relative_token_url() -> None:
    result = parse_openapi(OAUTH_CODE_YAML)
    assert result.auth_method == "oauth2"
    assert result.auth_params == {
        "authorize_url": "https://login.example.com/authorize",
        # Resolved against the server URL, templates included.
        "token_url": "https://{{auth.tenant}}.example.com/oauth/token",
        "scopes": ["read", "write"],
        "grant_type": "authorization_code",
        "pkce": True,
    }
    assert result.warnings == [oi.NO_PATHS]


def test_oauth2_client_credentials_only() -> None:
    flows = {"clientCredentials": {"tokenUrl": "oauth/token", "scopes": {"admin": "Admin"}}}
    result = parse_openapi(_json(_schemes({"cc": {"type": "oauth2", "flows": flows}})))
    assert result.auth_method == "oauth2"
    assert result.auth_params == {
        "token_url": "https://api.example.com/v1/oauth/token",
        "scopes": ["admin"],
        "grant_type": "client_credentials",
    }


def test_oauth2_implicit_only_warns_and_is_none() -> None:
    flows = {"implicit": {"authorizationUrl": "https://x.example.com/auth", "scopes": {}}}
    result = parse_openapi(_yaml(_schemes({"imp": {"type": "oauth2", "flows": flows}})))
    assert (result.auth_method, result.auth_params) == ("none", {})
    assert result.warnings == [oi.IMPLICIT_UNSUPPORTED]
    assert oi.IMPLICIT_UNSUPPORTED == "implicit flow is not supported: use authorization code"
    assert result.alternatives == ["imp: OAuth2 (implicit)"]


def test_openid_connect_warns_with_the_discovery_url() -> None:
    url = "https://id.example.com/.well-known/openid-configuration"
    doc = _schemes({"oidc": {"type": "openIdConnect", "openIdConnectUrl": url}})
    result = parse_openapi(_json(doc))
    assert result.auth_method == "none"
    assert result.warnings == [oi.OIDC_UNSUPPORTED.format(name="oidc", url=url)]
    assert url in result.warnings[0]


def test_no_security_schemes_is_none() -> None:
    result = parse_openapi(_json(_doc()))
    assert (result.auth_method, result.auth_params) == ("none", {})
    assert result.alternatives == [] and result.warnings == []


def test_top_level_security_wins_over_the_first_component() -> None:
    schemes = {
        "basicAuth": {"type": "http", "scheme": "basic"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-Key"},
    }
    result = parse_openapi(_yaml(_schemes(schemes, security=[{"apiKey": []}])))
    assert result.auth_params == {"placement": "header", "header_name": "X-Key"}
    assert result.alternatives == ["basicAuth: http basic"]


def test_without_top_level_security_the_first_component_wins() -> None:
    schemes = {
        "basicAuth": {"type": "http", "scheme": "basic"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-Key"},
    }
    result = parse_openapi(_yaml(_schemes(schemes)))
    assert result.auth_method == "basic"
    assert result.alternatives == ["apiKey: API key in header 'X-Key'"]


def test_an_unsupported_preferred_scheme_gives_way_to_a_supported_one() -> None:
    schemes = {
        "cookie": {"type": "apiKey", "in": "cookie", "name": "sid"},
        "bearer": {"type": "http", "scheme": "bearer"},
    }
    result = parse_openapi(_json(_schemes(schemes, security=[{"cookie": []}, {"bearer": []}])))
    assert result.auth_params == {"placement": "bearer"}
    assert result.warnings == [oi.COOKIE_UNSUPPORTED.format(name="cookie")]


def test_schemes_required_together_are_flagged_and_refs_followed() -> None:
    schemes = {
        "key": {"$ref": "#/components/securitySchemes/realKey"},
        "realKey": {"type": "apiKey", "in": "query", "name": "key"},
        "app": {"type": "apiKey", "in": "header", "name": "X-App"},
    }
    result = parse_openapi(_json(_schemes(schemes, security=[{"key": [], "app": []}])))
    assert result.auth_params == {"placement": "query", "query_name": "key"}
    assert result.warnings == [oi.ALSO_REQUIRED.format(name="app", chosen="key")]


# --- servers -------------------------------------------------------------------------------

VARIABLES_YAML = """\
openapi: 3.0.0
info: {title: Zendesk-like}
servers:
  - url: '{scheme}://{subdomain}.example.com/api/{version}/{region}'
    variables:
      scheme: {default: https, enum: [https, http]}
      subdomain: {default: acme, description: Your account's subdomain.}
      version: {default: v2, enum: [v2]}
      region: {default: eu, enum: [eu, us]}
  - url: https://sandbox.example.com
paths: {}
"""


def test_server_variables_become_auth_templates_and_extra_params() -> None:
    result = parse_openapi(VARIABLES_YAML)
    assert result.base_url == "https://{{auth.subdomain}}.example.com/api/v2/{{auth.region}}"
    assert [p.model_dump() for p in result.extra_params] == [
        {
            "key": "subdomain",
            "label": "Subdomain",
            "required": True,
            "secret": False,
            "default": "acme",
            "help": "Your account's subdomain.",
        },
        {
            "key": "region",
            "label": "Region",
            "required": True,
            "secret": False,
            "default": "eu",
            "help": "One of: eu, us.",
        },
    ]
    assert oi.SERVER_VARIABLE_FIXED.format(name="scheme", value="https") in result.warnings
    assert oi.MORE_SERVERS.format(count=2) in result.warnings


def test_variable_names_become_safe_unique_keys() -> None:
    server = {
        "url": "https://{Org-Name}.example.com/{org_name}",
        "variables": {"Org-Name": {"default": "a"}, "org_name": {"default": "b"}},
    }
    result = parse_openapi(_json(_doc(servers=[server])))
    assert result.base_url == "https://{{auth.org_name}}.example.com/{{auth.org_name_2}}"
    assert [(p.key, p.label) for p in result.extra_params] == [
        ("org_name", "Org name"),
        ("org_name_2", "Org name"),
    ]


def test_relative_server_url_is_resolved_against_a_given_base() -> None:
    doc = _doc(servers=[{"url": "/api/v3"}])
    assert parse_openapi(_json(doc), base_url="https://pets.example.com").base_url == (
        "https://pets.example.com/api/v3"
    )
    # The user typed the whole base already.
    given = "https://pets.example.com/api/v3/"
    assert parse_openapi(_json(doc), base_url=given).base_url == "https://pets.example.com/api/v3"


def test_missing_servers_use_the_given_base_as_is() -> None:
    doc = _doc()
    del doc["servers"]
    result = parse_openapi(_yaml(doc), base_url="https://api.example.com/v9")
    assert result.base_url == "https://api.example.com/v9"


# --- endpoints and info --------------------------------------------------------------------


def test_endpoints_are_sorted_and_skip_non_operations() -> None:
    paths = {
        "/b": {"post": {"summary": "Make b\n  now"}, "get": {}, "parameters": []},
        "/a/{id}": {"$ref": "#/components/pathItems/A"},
        "x-internal": {"get": {}},
    }
    components = {"pathItems": {"A": {"summary": "An A", "delete": {"operationId": "delA"}}}}
    result = parse_openapi(_json(_doc(paths=paths, components=components)))
    assert [e.model_dump() for e in result.endpoints] == [
        {"method": "DELETE", "path": "/a/{id}", "summary": "An A", "operation_id": "delA"},
        {"method": "GET", "path": "/b", "summary": "", "operation_id": ""},
        {"method": "POST", "path": "/b", "summary": "Make b now", "operation_id": ""},
    ]


def test_endpoints_are_capped_with_a_warning() -> None:
    paths = {f"/p{i:04d}": {"get": {}, "put": {}} for i in range(1001)}
    result = parse_openapi(_json(_doc(paths=paths)))
    assert len(result.endpoints) == oi.MAX_ENDPOINTS == 2000
    assert result.endpoints[-1].path == "/p0999"
    assert result.warnings == [oi.ENDPOINTS_CAPPED.format(count=2002, limit=2000)]


def test_description_is_stripped_and_trimmed() -> None:
    assert parse_openapi(_json(_doc())).description == "A demo."
    result = parse_openapi(_json(_doc(info={"title": "T", "description": "x" * 2500})))
    assert result.description == "x" * 2000
    assert result.warnings == [oi.DESCRIPTION_TRIMMED.format(limit=2000)]


def test_yaml_anchors_of_normal_size_are_fine() -> None:
    text = _yaml(_doc()) + "x-common: &c {a: 1}\nx-uses: [*c, *c, *c]\n"
    assert parse_openapi(text).name == "Demo API"


# --- errors --------------------------------------------------------------------------------


def test_too_large_is_refused_before_parsing() -> None:
    text = _json(_doc())
    assert _error(text, max_bytes=100).message == oi.TOO_LARGE.format(limit=100)
    big = b"x" * (oi.MAX_BYTES + 1)
    assert _error(big).message == oi.TOO_LARGE.format(limit=2_000_000)


def test_malformed_yaml_names_the_line() -> None:
    err = _error("openapi: 3.0.0\ninfo:\n  title: x\n   bad: [\n")
    assert err.message.startswith("Not valid YAML: line 4: ")


def test_malformed_json_names_the_line() -> None:
    err = _error('{\n  "openapi": "3.0.0",\n  "info": {,}\n}')
    assert err.message == oi.INVALID_SYNTAX_AT.format(
        syntax="JSON", line=3, problem="Expecting property name enclosed in double quotes"
    )


def test_unsafe_yaml_tags_are_refused() -> None:
    err = _error("openapi: !!python/object/apply:os.system ['true']\n")
    assert err.message.startswith("Not valid YAML: line 1: ")


def test_not_utf8_is_refused() -> None:
    assert _error(b"openapi: \xff\xfe 3\n").message == oi.NOT_UTF8


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text", "", '["openapi"]'])
def test_not_a_mapping(text: str) -> None:
    assert _error(text).message == oi.NOT_A_MAPPING


def test_swagger_2_is_refused() -> None:
    err = _error(_yaml({"swagger": "2.0", "info": {"title": "Old"}, "paths": {}}))
    assert err.message == "Swagger 2.0 documents are not supported: convert to OpenAPI 3 first"
    assert err.field == "swagger"


def test_not_openapi_or_not_version_3() -> None:
    assert _error(_json({"info": {}})).message == oi.NOT_OPENAPI
    err = _error(_json(_doc(openapi="4.0.0")))
    assert (err.message, err.field) == (oi.NOT_OPENAPI_3.format(version="4.0.0"), "openapi")


def test_missing_servers() -> None:
    doc = _doc()
    del doc["servers"]
    err = _error(_yaml(doc))
    assert (err.message, err.field) == (oi.NO_SERVERS, "servers")
    assert _error(_yaml(_doc(servers=[]))).message == oi.NO_SERVERS


def test_relative_server_without_base() -> None:
    err = _error(_json(_doc(servers=[{"url": "/v1"}])))
    assert err.message == "servers[0].url is relative: give the API's absolute base URL"
    assert err.field == "servers[0].url"


def test_relative_server_with_a_bad_base() -> None:
    err = _error(_json(_doc(servers=[{"url": "/v1"}])), base_url="ftp://files.example.com")
    assert (err.message, err.field) == (oi.BASE_URL_INVALID, "base_url")


@pytest.mark.parametrize("url", ["ftp://files.example.com", "ws://x.example.com/socket"])
def test_server_url_must_be_http(url: str) -> None:
    err = _error(_json(_doc(servers=[{"url": url}])))
    assert (err.message, err.field) == (oi.SERVER_URL_SCHEME, "servers[0].url")


def test_billion_laughs_fails_fast() -> None:
    lines = [_yaml(_doc()), 'x-lol0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*l{i - 1}"] * 9)
        lines.append(f"x-lol{i}: &l{i} [{refs}]")
    started = time.perf_counter()
    err = _error("\n".join(lines) + "\n")
    assert time.perf_counter() - started < 1.0
    assert err.message == oi.ALIAS_BOMB.format(limit=oi.MAX_ALIAS_EXPANSION)


def test_recursive_alias_is_refused() -> None:
    text = _yaml(_doc()) + "x-loop: &loop {self: *loop}\n"
    assert _error(text).message == oi.ALIAS_RECURSIVE


def test_deep_nesting_is_refused() -> None:
    text = '{"openapi": "3.0.0", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert _error(text).message == oi.TOO_DEEP


# --- the real published documents ----------------------------------------------------------


def _real(name: str) -> bytes:
    if not TESTDATA.is_dir():
        pytest.skip(f"shared OpenAPI test data not found at {TESTDATA}")
    return (TESTDATA / name).read_bytes()


def test_spotify_web_api() -> None:
    text = _real("spotify-web-api.yaml")
    started = time.perf_counter()
    result = parse_openapi(text)
    elapsed = time.perf_counter() - started
    print(f"parsed spotify-web-api.yaml ({len(text)} bytes) in {elapsed * 1000:.0f} ms")
    assert result.name == "Spotify Web API"
    assert result.base_url == "https://api.spotify.com/v1"
    assert result.auth_method == "oauth2"
    params = result.auth_params
    assert params["authorize_url"] == "https://accounts.spotify.com/authorize"
    assert params["token_url"] == "https://accounts.spotify.com/api/token"
    assert params["grant_type"] == "authorization_code" and params["pkce"] is True
    assert {"user-read-private", "user-read-email", "playlist-modify-public"} <= set(
        params["scopes"]
    )
    assert len(result.endpoints) > 50
    me = [e for e in result.endpoints if (e.method, e.path) == ("GET", "/me")]
    assert [(e.summary, e.operation_id) for e in me] == [
        ("Get Current User's Profile", "get-current-users-profile")
    ]
    assert result.extra_params == [] and result.warnings == []
    assert elapsed < 5.0


def test_resend_yaml_and_json_agree() -> None:
    from_yaml = parse_openapi(_real("resend.yaml"))
    from_json = parse_openapi(_real("resend.json"))
    for result in (from_yaml, from_json):
        assert result.name == "Resend"
        assert result.base_url == "https://api.resend.com"
        assert (result.auth_method, result.auth_params) == ("token", {"placement": "bearer"})
        assert len(result.endpoints) > 50
    assert from_yaml.endpoints == from_json.endpoints
    assert ("POST", "/emails") in {(e.method, e.path) for e in from_yaml.endpoints}
