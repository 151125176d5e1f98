"""The connector catalog: pre-built services shipped as data, one TOML file per API.

Each `services/catalog/<key>.toml` describes one provider (base URL, auth method and its
endpoints, extra parameters, a harmless test request). Files are parsed at the boundary
with strict pydantic models, so a typo in a shipped file fails at startup and in the tests,
naming the file and the field, instead of surfacing as a broken OAuth redirect later.

auth_params are validated with the auth method's own params model (the one a Service stores),
in connector mode: a connector describes the provider, so the service's registration (OAuth
client id) and its secrets are absent. A connector's auth_params therefore go into a Service
unchanged; the service then adds its client id and secret.
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from services.auth_methods import REGISTRY, AuthMethod, get_method
from services.auth_methods.base import CONNECTOR_CONTEXT, NON_FIELD, ParamsModel
from services.schemas import (
    ERR_HEADER_AUTHORIZATION,
    ERR_HEADER_DUPLICATE,
    ERR_HEADER_VALUE,
    ERR_PARAM_DUPLICATE,
    ERR_TEMPLATE_NAMESPACE,
    ERR_TEMPLATE_OPTIONAL,
    ERR_TEMPLATE_UNKNOWN,
    ERR_URL_QUERY,
    TEMPLATE_EXAMPLE,
    ExtraParam,
    Pagination,
    TestRequest,
    check_header_name,
    check_https_url,
    template_refs,
)

CATALOG_DIR = Path(__file__).resolve().parent
_REPO_ROOT = CATALOG_DIR.parents[1]
SUFFIXES = (".toml", ".json")
KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"

ERR_KEY_IN_FILE = "must not be set: the file name is the connector key"
ERR_DUPLICATE_FILE = "two catalog files define this key"
ERR_NOT_A_TABLE = "the file must contain a table of connector fields"
ERR_SYNTAX = "invalid {fmt}: {error}"
ERR_NOT_A_DIRECTORY = "not a directory"
ERR_DOCS_URL_TEMPLATE = "must be a fixed URL, without templates"
ERR_AUTH_METHOD = "{key} is not an auth method a connector can use: choose one of {choices}"


class CatalogError(Exception):
    """A catalog file that does not parse or validate.

    The message names the file and each failing field path, e.g.
    "services/catalog/slack.toml: auth_params.token_url: Field required".
    """

    def __init__(self, path: Path, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        shown = _display_path(path)
        super().__init__("; ".join(f"{shown}: {loc}: {msg}" if loc else f"{shown}: {msg}"
                                   for loc, msg in problems))  # fmt: skip


class Connector(BaseModel):
    """One catalog entry. Frozen: the loaded catalog is cached and shared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=KEY_PATTERN, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    base_url: str
    auth_method: str
    # The auth method's params as a Service stores them (exclude_none dump), minus client id.
    auth_params: dict[str, Any] = Field(default_factory=dict)
    extra_params: list[ExtraParam] = Field(default_factory=list)
    default_headers: dict[str, str] = Field(default_factory=dict)
    docs_url: str
    test_request: TestRequest
    pagination: Pagination | None = None
    console_hint: str | None = None

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = check_https_url(value)
        if "?" in value:
            raise PydanticCustomError("url_query", ERR_URL_QUERY)
        return value.rstrip("/")

    @field_validator("auth_method")
    @classmethod
    def _auth_method(cls, key: str) -> str:
        if _connector_method(key) is None:
            choices = ", ".join(k for k in REGISTRY if _connector_method(k) is not None)
            raise PydanticCustomError(
                "auth_method", ERR_AUTH_METHOD, {"key": repr(key), "choices": choices}
            )
        return key

    @field_validator("docs_url")
    @classmethod
    def _docs_url(cls, value: str) -> str:
        value = check_https_url(value)
        if template_refs(value):
            raise PydanticCustomError("docs_url_template", ERR_DOCS_URL_TEMPLATE)
        return value

    @field_validator("default_headers")
    @classmethod
    def _default_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        seen: set[str] = set()
        for name, value in headers.items():
            check_header_name(name)
            if name.lower() == "authorization":
                raise PydanticCustomError("header_authorization", ERR_HEADER_AUTHORIZATION)
            if name.lower() in seen:
                raise PydanticCustomError("header_duplicate", ERR_HEADER_DUPLICATE, {"name": name})
            seen.add(name.lower())
            if "\r" in value or "\n" in value:
                raise PydanticCustomError("header_value", ERR_HEADER_VALUE)
        return headers

    @model_validator(mode="wrap")
    @classmethod
    def _cross_field(cls, data: Any, handler: ModelWrapValidatorHandler[Connector]) -> Connector:
        """Validate auth_params for the chosen method and every template against extra_params.

        A wrap validator, so auth_params errors keep their own field path
        (auth_params.token_url) and are reported together with the plain field errors.
        """
        problems: list[InitErrorDetails] = []
        if isinstance(data, dict):
            data = dict(data)
            params = data.get("auth_params", {})
            if isinstance(params, dict):
                auth, problems = _validate_auth_params(str(data.get("auth_method")), params)
                if auth is not None:
                    data["auth_params"] = auth
        try:
            connector = handler(data)
        except ValidationError as exc:
            raise _combine(cls, _relocate(exc, ()) + problems) from None
        if problems:
            raise _combine(cls, problems)
        # Templates are checked once the fields they point into are known to be well-formed.
        problems = connector._template_problems()
        if problems:
            raise _combine(cls, problems)
        return connector

    def _template_problems(self) -> list[InitErrorDetails]:
        params = {p.key: p for p in self.extra_params}
        problems: list[InitErrorDetails] = []
        seen: set[str] = set()
        for index, param in enumerate(self.extra_params):
            if param.key in seen:
                problems.append(
                    _detail(
                        ("extra_params", index, "key"),
                        "param_duplicate",
                        ERR_PARAM_DUPLICATE,
                        key=param.key,
                    )  # fmt: skip
                )
            seen.add(param.key)
        for loc, text, must_resolve in self._templated_strings():
            try:
                refs = template_refs(text)
            except PydanticCustomError as exc:
                problems.append(_detail(loc, exc.type, exc.message()))
                continue
            for namespace, key in refs:
                ref = f"{namespace}.{key}"
                if namespace != "auth":
                    problems.append(
                        _detail(
                            loc,
                            "template_namespace",
                            ERR_TEMPLATE_NAMESPACE,
                            ref=ref,
                            example=TEMPLATE_EXAMPLE,
                        )  # fmt: skip
                    )
                elif key not in params:
                    problems.append(
                        _detail(loc, "template_unknown", ERR_TEMPLATE_UNKNOWN, ref=ref, key=key)
                    )
                elif must_resolve and not (params[key].required or params[key].default):
                    problems.append(
                        _detail(loc, "template_optional", ERR_TEMPLATE_OPTIONAL, ref=ref, key=key)
                    )
        for loc, url in self._auth_urls():
            try:
                check_https_url(url)
            except PydanticCustomError as exc:
                problems.append(_detail(loc, exc.type, exc.message()))
        return problems

    def _templated_strings(self) -> Iterator[tuple[tuple[str | int, ...], str, bool]]:
        """(field path, text, must every template resolve) for each templatable string."""
        yield ("base_url",), self.base_url, True
        yield ("test_request", "path"), self.test_request.path, True
        for name, value in self.default_headers.items():
            yield ("default_headers", name), value, True
        for loc, value in _strings(self.auth_params, ("auth_params",)):
            yield loc, value, True

    def _auth_urls(self) -> Iterator[tuple[tuple[str | int, ...], str]]:
        for loc, value in _strings(self.auth_params, ("auth_params",)):
            if str(loc[-1]).endswith("_url") and value:
                yield loc, value

    def typed_auth_params(self) -> ParamsModel:
        """auth_params parsed into the method's model (OAuth2Params, TokenParams, ...)."""
        return get_method(self.auth_method).parse_params(self.auth_params, connector=True)

    def template_keys(self) -> set[str]:
        """Extra param keys referenced by templates anywhere in this connector."""
        return {key for _, text, _ in self._templated_strings() for _, key in template_refs(text)}


def _connector_method(key: str) -> AuthMethod | None:
    """The registered method for key, unless it needs a connector itself (pre-existing)."""
    method = REGISTRY.get(key)
    return None if method is None or method.uses_connector else method


def _validate_auth_params(
    method_key: str, params: dict[str, Any]
) -> tuple[dict[str, Any] | None, list[InitErrorDetails]]:
    """(params as a Service stores them, problems) with the method's model in connector mode.

    None when the method is unknown (the auth_method field reports that) or params are invalid.
    """
    method = _connector_method(method_key)
    if method is None:
        return None, []
    try:
        model = method.params_model.model_validate(params, context=CONNECTOR_CONTEXT)
    except ValidationError as exc:
        return None, _relocate(exc, ("auth_params",))
    model, errors = method.check_params(model)
    if errors:
        problems = [
            _detail(("auth_params",) if field == NON_FIELD else ("auth_params", field),
                    "auth_params", message)
            for field, messages in errors.items()
            for message in messages
        ]  # fmt: skip
        return None, problems
    return model.model_dump(mode="json", exclude_none=True), []


def _strings(value: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*loc, index))


def _detail(
    loc: tuple[str | int, ...], error_type: str, message: str, /, **ctx: Any
) -> InitErrorDetails:
    return {
        "type": PydanticCustomError(error_type, message, ctx or None),
        "loc": loc,
        "input": None,
    }


def _relocate(exc: ValidationError, prefix: tuple[str | int, ...]) -> list[InitErrorDetails]:
    # Messages are already rendered; re-wrap them so they survive the rebuild verbatim.
    return [
        {
            "type": PydanticCustomError(err["type"], err["msg"]),
            "loc": (*prefix, *err["loc"]),
            "input": err.get("input"),
        }
        for err in exc.errors(include_url=False)
    ]


def _combine(cls: type[BaseModel], problems: list[InitErrorDetails]) -> ValidationError:
    return ValidationError.from_exception_data(cls.__name__, problems)


def _display_path(path: Path) -> str:
    try:
        return path.resolve().relative_to(_REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def _read(path: Path) -> Any:
    fmt = "TOML" if path.suffix == ".toml" else "JSON"
    try:
        if path.suffix == ".toml":
            with path.open("rb") as fh:
                return tomllib.load(fh)
        return json.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(path, [("", ERR_SYNTAX.format(fmt=fmt, error=exc))]) from None


def load_connector_file(path: Path | str) -> Connector:
    """Parse and validate one catalog file; the file stem becomes the connector key."""
    path = Path(path)
    data = _read(path)
    if not isinstance(data, dict):
        raise CatalogError(path, [("", ERR_NOT_A_TABLE)])
    if "key" in data:
        raise CatalogError(path, [("key", ERR_KEY_IN_FILE)])
    try:
        return Connector.model_validate({"key": path.stem, **data})
    except ValidationError as exc:
        problems = [
            (".".join(str(part) for part in err["loc"]), err["msg"])
            for err in exc.errors(include_url=False)
        ]
        raise CatalogError(path, problems) from None


def load_catalog_dir(path: Path | str) -> dict[str, Connector]:
    """Load every *.toml / *.json file in a directory, keyed and sorted by connector key.

    Files whose names start with "_" or "." are skipped (drafts, editor files).
    """
    directory = Path(path)
    if not directory.is_dir():
        raise CatalogError(directory, [("", ERR_NOT_A_DIRECTORY)])
    connectors: dict[str, Connector] = {}
    files = sorted(
        p for p in directory.iterdir()
        if p.suffix in SUFFIXES and p.is_file() and not p.name.startswith(("_", "."))
    )  # fmt: skip
    for file in files:
        connector = load_connector_file(file)
        if connector.key in connectors:
            raise CatalogError(file, [("key", ERR_DUPLICATE_FILE)])
        connectors[connector.key] = connector
    return connectors


@functools.cache
def load_catalog() -> dict[str, Connector]:
    """The shipped catalog, parsed once per process. Treat the result as read-only."""
    return load_catalog_dir(CATALOG_DIR)


def get_connector(key: str) -> Connector | None:
    """The shipped connector with this key, or None."""
    return load_catalog().get(key)


def connector_exists(key: str) -> bool:
    """Is this key in the shipped catalog? (The pre-existing method's check, see apps.py.)"""
    return get_connector(key) is not None
