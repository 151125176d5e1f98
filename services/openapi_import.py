"""Turn an OpenAPI 3.x document into a draft service definition.

Pure Python on purpose (pyyaml + pydantic, no Django), so the import form, the JSON API and the
tests can all call `parse_openapi` without a database. Nothing here fetches anything: the
document is text the user gave us, and it is treated as hostile input (size cap, safe YAML
with an alias-expansion guard, no recursion over user data).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field

MAX_BYTES = 2_000_000
MAX_ENDPOINTS = 2000
MAX_DESCRIPTION = 2000
MAX_NAME = 200
MAX_SUMMARY = 300
# Nodes that YAML aliases may add on top of the nodes written out in the text. Real documents
# reuse a few anchors; a "billion laughs" document multiplies them by millions.
MAX_ALIAS_EXPANSION = 200_000

# Errors (OpenAPIImportError.message).
TOO_LARGE = "The document is larger than {limit} bytes"
NOT_UTF8 = "The document is not UTF-8 text"
INVALID_SYNTAX = "Not valid {syntax}"
INVALID_SYNTAX_AT = "Not valid {syntax}: line {line}: {problem}"
TOO_DEEP = "The document is nested too deeply"
ALIAS_BOMB = "The YAML aliases expand to too many nodes (more than {limit} beyond the text)"
ALIAS_RECURSIVE = "The YAML document refers to itself through an alias"
NOT_A_MAPPING = "The document is not an OpenAPI object (expected a mapping at the top level)"
SWAGGER_2 = "Swagger 2.0 documents are not supported: convert to OpenAPI 3 first"
NOT_OPENAPI = "Not an OpenAPI document: the top-level 'openapi' field is missing"
NOT_OPENAPI_3 = "OpenAPI version {version} is not supported: expected 3.x"
NO_SERVERS = "The document lists no servers: give the API's absolute base URL"
SERVERS_NOT_LIST = "servers must be a list of server objects"
SERVER_URL_MISSING = "servers[0].url is missing"
SERVER_URL_RELATIVE = "servers[0].url is relative: give the API's absolute base URL"
SERVER_URL_SCHEME = "servers[0].url must be an http:// or https:// URL"
BASE_URL_INVALID = "The base URL must be an absolute http:// or https:// URL"

# Warnings (ImportedService.warnings).
NO_TITLE = "The document has no info.title: the service is named '{name}'"
DESCRIPTION_TRIMMED = "The description was trimmed to {limit} characters"
SERVER_VARIABLE_FIXED = "Server variable '{name}' is part of the URL scheme: fixed to '{value}'"
SERVER_VARIABLE_UNDECLARED = "Server variable '{name}' is used in the URL but not declared"
MORE_SERVERS = "The document lists {count} servers: the first one was used"
ENDPOINTS_CAPPED = "The document has {count} operations: only the first {limit} were imported"
NO_PATHS = "The document describes no paths"
COOKIE_UNSUPPORTED = "Security scheme '{name}' sends an API key in a cookie, which is not supported"
IMPLICIT_UNSUPPORTED = "implicit flow is not supported: use authorization code"
ROPC_FLOW_UNSUPPORTED = "OAuth2 password flow is not supported: use authorization code"
OIDC_UNSUPPORTED = (
    "Security scheme '{name}' uses OpenID Connect discovery ({url}), which is not imported: "
    "set up OAuth2 by hand from the provider's discovery document"
)
SCHEME_UNSUPPORTED = "Security scheme '{name}' ({kind}) is not supported"
SCHEME_MISSING = "Security requirement '{name}' names no scheme in components.securitySchemes"
ALSO_REQUIRED = "The API also requires '{name}' alongside '{chosen}': add it by hand"
OAUTH_URL_INVALID = "Security scheme '{name}': {field} is not an http(s) URL: {url}"

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_VARIABLE_RE = re.compile(r"\{([^{}]+)\}")

AuthMethod = Literal["none", "token", "basic", "oauth2"]


class OpenAPIImportError(ValueError):
    """A document we cannot turn into a service; `message` is shown to the user as is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ExtraParam(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    label: str
    required: bool = True
    secret: bool = False
    default: str = ""
    help: str = ""


class Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str
    path: str
    summary: str = ""
    operation_id: str = ""


class ImportedService(BaseModel):
    """The draft a user reviews before `service_create`; nothing here is trusted yet."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    base_url: str
    auth_method: AuthMethod = "none"
    auth_params: dict[str, Any] = Field(default_factory=dict)
    extra_params: list[ExtraParam] = Field(default_factory=list)
    endpoints: list[Endpoint] = Field(default_factory=list)
    alternatives: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


def parse_openapi(
    text: str | bytes, *, max_bytes: int = MAX_BYTES, base_url: str | None = None
) -> ImportedService:
    """Parse an OpenAPI 3 document (JSON or YAML) into a service draft.

    `base_url` is only used when the document has no servers or a relative server URL: the
    caller asks the user for it after a SERVER_URL_RELATIVE / NO_SERVERS error.
    """
    doc = _load(text, max_bytes=max_bytes)
    if not isinstance(doc, dict):
        raise OpenAPIImportError(NOT_A_MAPPING)
    if "swagger" in doc:
        raise OpenAPIImportError(SWAGGER_2, "swagger")
    version = doc.get("openapi")
    if version is None:
        raise OpenAPIImportError(NOT_OPENAPI, "openapi")
    if not str(version).startswith("3."):
        raise OpenAPIImportError(NOT_OPENAPI_3.format(version=version), "openapi")

    warnings: list[str] = []
    info = _mapping(doc.get("info"))
    name = _text(info.get("title"))[:MAX_NAME]
    if not name:
        name = "Imported API"
        warnings.append(NO_TITLE.format(name=name))
    description = _text(info.get("description"))
    if len(description) > MAX_DESCRIPTION:
        description = description[:MAX_DESCRIPTION].rstrip()
        warnings.append(DESCRIPTION_TRIMMED.format(limit=MAX_DESCRIPTION))

    service_url, extra_params = _base_url(doc, base_url, warnings)
    auth_method, auth_params, alternatives = _choose_security(doc, service_url, warnings)
    endpoints = _endpoints(doc, warnings)
    return ImportedService(
        name=name,
        description=description,
        base_url=service_url,
        auth_method=auth_method,
        auth_params=auth_params,
        extra_params=extra_params,
        endpoints=endpoints,
        alternatives=alternatives,
        warnings=warnings,
    )


# --- loading -------------------------------------------------------------------------------

_YAMLBase: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _GuardedSafeLoader(_YAMLBase):  # type: ignore[misc,valid-type]
    """yaml.safe_load's loader (libyaml's when present), refusing alias bombs before building.

    Aliases share one node, so composing a bomb is cheap; the blow-up comes later (merge keys
    are flattened eagerly, and any walk or dump of the result repeats shared parts). We measure
    the expanded size of the node graph, memoised so the measurement itself stays linear.
    """

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _check_alias_expansion(node)
        return node


def _check_alias_expansion(root: yaml.Node) -> None:
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            in_progress.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            continue
        if key in sizes:
            continue
        in_progress.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in in_progress:
                raise OpenAPIImportError(ALIAS_RECURSIVE)
            if id(child) not in sizes:
                stack.append((child, False))
    if sizes[id(root)] > len(sizes) + MAX_ALIAS_EXPANSION:
        raise OpenAPIImportError(ALIAS_BOMB.format(limit=MAX_ALIAS_EXPANSION))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _load(text: str | bytes, *, max_bytes: int) -> Any:
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise OpenAPIImportError(TOO_LARGE.format(limit=max_bytes))
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise OpenAPIImportError(NOT_UTF8) from None
    text = text.removeprefix("\ufeff")
    try:
        if text.lstrip().startswith("{"):
            return _load_json(text)
        return _load_yaml(text)
    except RecursionError:
        raise OpenAPIImportError(TOO_DEEP) from None


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise OpenAPIImportError(
            INVALID_SYNTAX_AT.format(syntax="JSON", line=exc.lineno, problem=exc.msg)
        ) from None
    except ValueError:  # e.g. an integer longer than Python's digit limit
        raise OpenAPIImportError(INVALID_SYNTAX.format(syntax="JSON")) from None


def _load_yaml(text: str) -> Any:
    loader = _GuardedSafeLoader(text)
    try:
        return loader.get_single_data()
    except OpenAPIImportError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        if mark is None:
            raise OpenAPIImportError(INVALID_SYNTAX.format(syntax="YAML")) from None
        raise OpenAPIImportError(
            INVALID_SYNTAX_AT.format(syntax="YAML", line=mark.line + 1, problem=problem)
        ) from None
    except (yaml.YAMLError, ValueError):
        # ValueError: a scalar the safe constructor cannot build (a bad date, a huge integer).
        raise OpenAPIImportError(INVALID_SYNTAX.format(syntax="YAML")) from None
    finally:
        loader.dispose()


# --- servers -------------------------------------------------------------------------------


def _base_url(
    doc: dict[str, Any], given: str | None, warnings: list[str]
) -> tuple[str, list[ExtraParam]]:
    """servers[0].url as a `{{auth.var}}` template, plus one extra param per variable."""
    servers = doc.get("servers")
    if servers is not None and not isinstance(servers, list):
        raise OpenAPIImportError(SERVERS_NOT_LIST, "servers")
    if not servers:
        if given is None:
            raise OpenAPIImportError(NO_SERVERS, "servers")
        servers = [{"url": "/"}]  # the OpenAPI default
    if len(servers) > 1:
        warnings.append(MORE_SERVERS.format(count=len(servers)))
    server = _mapping(servers[0])
    raw = server.get("url")
    if not isinstance(raw, str) or not raw.strip():
        raise OpenAPIImportError(SERVER_URL_MISSING, "servers[0].url")
    raw = raw.strip()
    variables = _mapping(server.get("variables"))

    scheme_part = raw.split("://", 1)[0] if "://" in raw else ""
    template, sample, params = raw, raw, []
    seen: set[str] = set()
    for name in dict.fromkeys(_VARIABLE_RE.findall(raw)):
        if name not in variables:
            warnings.append(SERVER_VARIABLE_UNDECLARED.format(name=name))
        spec = _mapping(variables.get(name))
        default = _text(spec.get("default"))
        enum = [_text(v) for v in _list(spec.get("enum")) if _text(v)]
        placeholder = "{" + name + "}"
        if placeholder in scheme_part or (len(enum) == 1 and default in ("", enum[0])):
            # Nothing to ask the user: a scheme cannot be a template, one value is no choice.
            value = default or (enum[0] if enum else "https")
            if placeholder in scheme_part:
                warnings.append(SERVER_VARIABLE_FIXED.format(name=name, value=value))
            template = template.replace(placeholder, value)
            sample = sample.replace(placeholder, value)
            continue
        key = _param_key(name, seen)
        template = template.replace(placeholder, "{{auth." + key + "}}")
        sample = sample.replace(placeholder, default or "x")
        choices = f"One of: {', '.join(enum)}." if enum else ""
        help_text = " ".join(p for p in (_text(spec.get("description")), choices) if p)
        params.append(ExtraParam(key=key, label=_label(name), default=default, help=help_text))

    if not _is_absolute(sample):
        if "://" in sample:
            raise OpenAPIImportError(SERVER_URL_SCHEME, "servers[0].url")
        if given is None:
            raise OpenAPIImportError(SERVER_URL_RELATIVE, "servers[0].url")
        template, sample = _join_given(given, template), _join_given(given, sample)
    if not _is_http_url(sample):
        raise OpenAPIImportError(SERVER_URL_SCHEME, "servers[0].url")
    return template.rstrip("/"), params


def _join_given(given: str, relative: str) -> str:
    """Resolve a relative server URL against the URL the user typed.

    The user was asked for the API's base URL, so when it already ends with the relative
    path (or the document has no servers, "/") it is used as is; otherwise RFC 3986 applies,
    as OpenAPI says for relative server URLs.
    """
    given = given.strip()
    if not _is_http_url(given):
        raise OpenAPIImportError(BASE_URL_INVALID, "base_url")
    tail = relative.strip("/")
    if not tail or (urlsplit(given).path.rstrip("/") + "/").endswith("/" + tail + "/"):
        return given
    return urljoin(given, relative)


def _is_absolute(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:  # "https://[::1": judged (and refused) by _is_http_url
        return "://" in url
    return bool(parts.scheme and parts.netloc)


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and port != 0


def _param_key(name: str, seen: set[str]) -> str:
    base = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_") or "var"
    if base[0].isdigit():
        base = "v_" + base
    key, n = base, 2
    while key in seen:
        key, n = f"{base}_{n}", n + 1
    seen.add(key)
    return key


def _label(name: str) -> str:
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").replace("-", " ")
    return " ".join(words.split()).capitalize() or name


# --- security ------------------------------------------------------------------------------


def _choose_security(
    doc: dict[str, Any], base_url: str, warnings: list[str]
) -> tuple[AuthMethod, dict[str, Any], list[str]]:
    """Pick the scheme a user most likely wants; describe the others as alternatives.

    Order: the schemes the top-level `security` names (in its order), then the rest of
    components.securitySchemes. The first one we can express wins.
    """
    schemes = _mapping(_mapping(doc.get("components")).get("securitySchemes"))
    requirements = doc.get("security") if isinstance(doc.get("security"), list) else []
    ordered: list[str] = []
    together: dict[str, list[str]] = {}
    for requirement in requirements:
        names = [str(n) for n in _mapping(requirement)]
        for name in names:
            if name not in schemes:
                warnings.append(SCHEME_MISSING.format(name=name))
            elif name not in ordered:
                ordered.append(name)
                together[name] = [n for n in names if n != name and n in schemes]
    ordered += [str(n) for n in schemes if str(n) not in ordered]

    chosen: tuple[str, AuthMethod, dict[str, Any]] | None = None
    for name in ordered:
        scheme = _resolve_ref(doc, schemes[name])
        kind, params, problem = _map_scheme(name, scheme, base_url)
        if problem:
            warnings.append(problem)
        if chosen is None and kind is not None:
            chosen = (name, kind, params)
    alternatives = [
        _describe(name, _resolve_ref(doc, schemes[name]))
        for name in ordered
        if chosen is None or name != chosen[0]
    ]
    if chosen is None:
        return "none", {}, alternatives
    for other in together.get(chosen[0], []):
        warnings.append(ALSO_REQUIRED.format(name=other, chosen=chosen[0]))
    return chosen[1], chosen[2], alternatives


def _map_scheme(
    name: str, scheme: dict[str, Any], base_url: str
) -> tuple[AuthMethod | None, dict[str, Any], str | None]:
    """(auth method, auth params, warning) for one security scheme object."""
    kind = _text(scheme.get("type"))
    if kind == "http":
        http = _text(scheme.get("scheme")).lower()
        if http == "bearer":
            return "token", {"placement": "bearer"}, None
        if http == "basic":
            return "basic", {}, None
        return None, {}, SCHEME_UNSUPPORTED.format(name=name, kind=f"http {http or '?'}")
    if kind == "apiKey":
        where, key_name = _text(scheme.get("in")), _text(scheme.get("name"))
        if where == "header" and key_name:
            return "token", {"placement": "header", "header_name": key_name}, None
        if where == "query" and key_name:
            return "token", {"placement": "query", "query_name": key_name}, None
        if where == "cookie":
            return None, {}, COOKIE_UNSUPPORTED.format(name=name)
        return None, {}, SCHEME_UNSUPPORTED.format(name=name, kind=f"apiKey in {where or '?'}")
    if kind == "oauth2":
        return _map_oauth2(name, _mapping(scheme.get("flows")), base_url)
    if kind == "openIdConnect":
        url = _text(scheme.get("openIdConnectUrl")) or "no URL given"
        return None, {}, OIDC_UNSUPPORTED.format(name=name, url=url)
    return None, {}, SCHEME_UNSUPPORTED.format(name=name, kind=kind or "no type")


def _map_oauth2(
    name: str, flows: dict[str, Any], base_url: str
) -> tuple[AuthMethod | None, dict[str, Any], str | None]:
    code = _mapping(flows.get("authorizationCode"))
    if code:
        authorize_url = _absolute(_text(code.get("authorizationUrl")), base_url)
        token_url = _absolute(_text(code.get("tokenUrl")), base_url)
        for field, url in (("authorizationUrl", authorize_url), ("tokenUrl", token_url)):
            if not _is_http_url(url):
                return None, {}, OAUTH_URL_INVALID.format(name=name, field=field, url=url or "''")
        params = {"authorize_url": authorize_url, "token_url": token_url, "scopes": _scopes(code)}
        return "oauth2", {**params, "grant_type": "authorization_code", "pkce": True}, None
    client = _mapping(flows.get("clientCredentials"))
    if client:
        token_url = _absolute(_text(client.get("tokenUrl")), base_url)
        if not _is_http_url(token_url):
            return None, {}, OAUTH_URL_INVALID.format(name=name, field="tokenUrl", url=token_url)
        params = {"token_url": token_url, "scopes": _scopes(client)}
        return "oauth2", {**params, "grant_type": "client_credentials"}, None
    if flows.get("implicit"):
        return None, {}, IMPLICIT_UNSUPPORTED
    if flows.get("password"):
        return None, {}, ROPC_FLOW_UNSUPPORTED
    return None, {}, SCHEME_UNSUPPORTED.format(name=name, kind="oauth2 without flows")


def _scopes(flow: dict[str, Any]) -> list[str]:
    return [str(scope) for scope in _mapping(flow.get("scopes"))]


def _absolute(url: str, base_url: str) -> str:
    """RFC 3986 resolution against the server URL, as OpenAPI 3 says for relative OAuth URLs."""
    if not url or _is_absolute(url):
        return url
    return urljoin(base_url.rstrip("/") + "/", url)


def _describe(name: str, scheme: dict[str, Any]) -> str:
    kind = _text(scheme.get("type")) or "unknown"
    if kind == "http":
        return f"{name}: http {_text(scheme.get('scheme')).lower() or '?'}"
    if kind == "apiKey":
        return f"{name}: API key in {_text(scheme.get('in'))} '{_text(scheme.get('name'))}'"
    if kind == "oauth2":
        flows = ", ".join(str(f) for f in _mapping(scheme.get("flows"))) or "no flows"
        return f"{name}: OAuth2 ({flows})"
    if kind == "openIdConnect":
        return f"{name}: OpenID Connect ({_text(scheme.get('openIdConnectUrl'))})"
    return f"{name}: {kind}"


def _resolve_ref(doc: dict[str, Any], value: Any) -> dict[str, Any]:
    """Follow local `#/...` references (a bounded number of hops); anything else is {}."""
    for _ in range(10):
        if not isinstance(value, dict) or "$ref" not in value:
            break
        ref = value["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return {}
        value = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, dict) and "$ref" not in value else {}


# --- endpoints -----------------------------------------------------------------------------


def _endpoints(doc: dict[str, Any], warnings: list[str]) -> list[Endpoint]:
    paths = _mapping(doc.get("paths"))
    if not paths:
        warnings.append(NO_PATHS)
        return []
    found: list[Endpoint] = []
    for path, item in paths.items():
        if not isinstance(path, str) or not path.startswith("/"):
            continue  # `x-` extensions and junk keys
        item = _resolve_ref(doc, item)
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            summary = _text(operation.get("summary")) or _text(item.get("summary"))
            found.append(
                Endpoint(
                    method=method.upper(),
                    path=path,
                    summary=" ".join(summary.split())[:MAX_SUMMARY],
                    operation_id=_text(operation.get("operationId"))[:MAX_NAME],
                )
            )
    found.sort(key=lambda e: (e.path, e.method))
    if len(found) > MAX_ENDPOINTS:
        warnings.append(ENDPOINTS_CAPPED.format(count=len(found), limit=MAX_ENDPOINTS))
        found = found[:MAX_ENDPOINTS]
    return found


# --- small readers -------------------------------------------------------------------------


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value).strip()
