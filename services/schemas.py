"""Pydantic shapes for the non-auth parts of a service definition, and template helpers.

The connector catalog, the Service forms and the JSON API all parse extra parameters, test
requests and pagination hints with these models, so a value accepted in one place is accepted
in every other. Auth params are not here: each auth method's ``params_model``
(services.auth_methods) is their one shape, for a Service and for a catalog connector alike.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

PARAM_KEY_PATTERN = r"^[a-z][a-z0-9_]*$"
# Keys the authentication form already uses for its own values (CONTRACT: POST /authentications).
RESERVED_PARAM_KEYS = frozenset({"token", "username", "password"})
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
TEMPLATE_RE = re.compile(r"\{\{(.*?)\}\}")
TEMPLATE_REF_RE = re.compile(r"^(auth|service)\.([a-z][a-z0-9_]*)$")
DOTTED_PATH_RE = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")
HEADER_CURSOR_PREFIX = "header:"

# User-facing messages (tests assert these words).
ERR_URL_SCHEME = "must start with http:// or https://"
ERR_URL_HTTPS = "must use https://"
ERR_URL_HOST = "must include a host name"
ERR_URL_USERINFO = "must not contain a user name or password"
ERR_URL_FRAGMENT = "must not contain a #fragment"
ERR_URL_QUERY = "must not contain a ?query; put query parameters on the request"
ERR_URL_SPACE = "must not contain spaces"
ERR_URL_INVALID = "is not a valid URL ({error})"
ERR_URL_PORT = "must have a port between 1 and 65535"
ERR_PATH_SLASH = "must start with /"
ERR_PATH_ABSOLUTE = "must be a path, not a full URL"
TEMPLATE_EXAMPLE = "{{auth.KEY}}"
ERR_TEMPLATE_MALFORMED = "malformed template {template}: templates look like {example}"
ERR_TEMPLATE_UNKNOWN = "unknown template key {ref}: declare {key} in extra_params"
ERR_TEMPLATE_NAMESPACE = "template {ref} is not allowed here: only {example} templates are"
ERR_TEMPLATE_OPTIONAL = (
    "template key {ref} is used here, so extra param {key} must be required or have a default"
)
ERR_PARAM_KEY_RESERVED = "{key} is reserved for the authentication's own fields; pick another key"
ERR_PARAM_DUPLICATE = "duplicate extra param key {key}"
ERR_PATTERN_INVALID = "is not a valid regular expression: {error}"
ERR_PATTERN_MISMATCH = "{value} does not match the pattern {pattern}"
ERR_SECRET_DEFAULT = "a secret parameter cannot have a default"  # noqa: S105
ERR_HEADER_NAME = "{name} is not a valid HTTP header name"
ERR_HEADER_VALUE = "header values must not contain line breaks"
ERR_HEADER_AUTHORIZATION = "Authorization is set by the auth method, not by default_headers"
ERR_HEADER_DUPLICATE = "header {name} is given twice (names are case-insensitive)"
ERR_DOTTED_PATH = "{path} is not a dotted path like next_page.offset"
ERR_PARAM_NAME = "must be a non-empty query parameter name without spaces"
ERR_PAGINATION_MISSING = "{field} is required for {kind} pagination"


def _error(error_type: str, message: str, /, **ctx: Any) -> PydanticCustomError:
    return PydanticCustomError(error_type, message, ctx or None)


def template_refs(text: str) -> list[tuple[str, str]]:
    """Return the (namespace, key) of every {{ns.KEY}} template in text.

    Raises PydanticCustomError on a malformed template, so a typo such as
    {{auth.Sub-domain}} fails loudly instead of being sent to the API verbatim.
    """
    refs = []
    for match in TEMPLATE_RE.finditer(text):
        ref = TEMPLATE_REF_RE.match(match.group(1))
        if ref is None:
            raise _malformed(match.group(0))
        refs.append((ref.group(1), ref.group(2)))
    rest = TEMPLATE_RE.sub("", text)
    if "{{" in rest or "}}" in rest:
        raise _malformed(text)
    return refs


def _malformed(template: str) -> PydanticCustomError:
    return _error(
        "template_malformed", ERR_TEMPLATE_MALFORMED, template=template, example=TEMPLATE_EXAMPLE
    )


def check_url(value: str, *, https_only: bool = False, allow_query: bool = True) -> str:
    """Validate an absolute http(s) URL that may carry {{auth.KEY}} templates.

    Templates are replaced by a placeholder before parsing, so
    https://{{auth.subdomain}}.zendesk.com is judged as https://x.zendesk.com.
    """
    value = value.strip()
    template_refs(value)
    if any(ch.isspace() for ch in TEMPLATE_RE.sub("x", value)):
        raise _error("url_space", ERR_URL_SPACE)
    try:
        parts = urlsplit(TEMPLATE_RE.sub("x", value))
    except ValueError as exc:  # e.g. "https://[::1": an unclosed IPv6 bracket
        raise _error("url_invalid", ERR_URL_INVALID, error=str(exc)) from None
    try:
        port = parts.port
    except ValueError:  # out of range (99999) or not a number
        raise _error("url_port", ERR_URL_PORT) from None
    if port == 0:
        raise _error("url_port", ERR_URL_PORT)
    if parts.scheme not in ("http", "https"):
        raise _error("url_scheme", ERR_URL_HTTPS if https_only else ERR_URL_SCHEME)
    if https_only and parts.scheme != "https":
        raise _error("url_https", ERR_URL_HTTPS)
    if not parts.hostname:
        raise _error("url_host", ERR_URL_HOST)
    if parts.username is not None or parts.password is not None:
        raise _error("url_userinfo", ERR_URL_USERINFO)
    if parts.fragment or value.endswith("#"):
        raise _error("url_fragment", ERR_URL_FRAGMENT)
    if not allow_query and (parts.query or "?" in value):
        raise _error("url_query", ERR_URL_QUERY)
    return value


def check_https_url(value: str) -> str:
    """Validate a URL that must be https (catalog entries, documentation links)."""
    return check_url(value, https_only=True)


def check_dotted_path(value: str) -> str:
    """Validate a dotted JSON path: names separated by dots, integers index lists."""
    if not DOTTED_PATH_RE.match(value):
        raise _error("dotted_path", ERR_DOTTED_PATH, path=value)
    return value


def check_header_name(name: str) -> str:
    """Validate an HTTP header field name (RFC 9110 token)."""
    if not HEADER_NAME_RE.match(name):
        raise _error("header_name", ERR_HEADER_NAME, name=name)
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExtraParam(_Strict):
    """A value the user supplies with each authentication (subdomain, tenant, instance...).

    Its key is what templates reference: {{auth.subdomain}}.
    """

    key: Annotated[str, Field(pattern=PARAM_KEY_PATTERN, max_length=64)]
    label: Annotated[str, Field(min_length=1, max_length=100)]
    required: bool = False
    secret: bool = False
    default: str | None = None
    help: str = ""
    pattern: str | None = None
    example: str | None = None

    @field_validator("key")
    @classmethod
    def _key_not_reserved(cls, key: str) -> str:
        if key in RESERVED_PARAM_KEYS:
            raise _error("param_key_reserved", ERR_PARAM_KEY_RESERVED, key=key)
        return key

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise _error("pattern_invalid", ERR_PATTERN_INVALID, error=str(exc)) from None
        return pattern

    @model_validator(mode="after")
    def _default_fits(self) -> ExtraParam:
        if self.secret and self.default is not None:
            raise _error("secret_default", ERR_SECRET_DEFAULT)
        if self.pattern is not None:
            for value in (self.default, self.example):
                if value is not None and not self.matches(value):
                    raise _error(
                        "pattern_mismatch", ERR_PATTERN_MISMATCH, value=value, pattern=self.pattern
                    )
        return self

    def matches(self, value: str) -> bool:
        """True when value satisfies this parameter's pattern (or it has none)."""
        return self.pattern is None or re.fullmatch(self.pattern, value) is not None


class TestRequest(_Strict):
    """The harmless call a health check and the "Test" button make (e.g. GET /me)."""

    __test__ = False  # not a pytest test class despite the name

    method: HttpMethod = "GET"
    path: Annotated[str, Field(min_length=1, max_length=2000)]

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, method: Any) -> Any:
        return method.upper() if isinstance(method, str) else method

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        if "://" in path:
            raise _error("path_absolute", ERR_PATH_ABSOLUTE)
        if not path.startswith("/"):
            raise _error("path_slash", ERR_PATH_SLASH)
        if any(ch.isspace() for ch in path):
            raise _error("url_space", ERR_URL_SPACE)
        template_refs(path)
        return path


class Pagination(_Strict):
    """How a list endpoint pages, so the console can offer "next page".

    kind:
      cursor  next cursor read from the body at cursor_path (dotted; integer segments index
              lists, -1 is the last item: Stripe's "data.-1.id"), or from a response header
              when cursor_path is "header:<Name>"; sent back as query param cursor_param.
      link    next page URL: the RFC 8288 Link header rel="next" when cursor_path is unset,
              else the body value at cursor_path; resolved against the URL just fetched
              (so relative ones like Twilio's next_page_uri work).
      offset  numeric offset sent as query param cursor_param, advanced by the page size.
      page    page number sent as query param page_param, starting at 1.
    limit_param names the page-size query param; items_path is where the list sits in the body.
    """

    kind: Literal["cursor", "link", "offset", "page"]
    cursor_path: str | None = None
    cursor_param: str | None = None
    limit_param: str | None = None
    page_param: str | None = None
    items_path: str | None = None

    @field_validator("cursor_path")
    @classmethod
    def _cursor_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith(HEADER_CURSOR_PREFIX):
            check_header_name(value.removeprefix(HEADER_CURSOR_PREFIX))
            return value
        return check_dotted_path(value)

    @field_validator("items_path")
    @classmethod
    def _items_path(cls, value: str | None) -> str | None:
        return None if value is None else check_dotted_path(value)

    @field_validator("cursor_param", "limit_param", "page_param")
    @classmethod
    def _param_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(ch.isspace() for ch in value)):
            raise _error("param_name", ERR_PARAM_NAME)
        return value

    @model_validator(mode="after")
    def _kind_fields(self) -> Pagination:
        needed = {
            "cursor": ("cursor_path", "cursor_param"),
            "link": (),
            "offset": ("cursor_param",),
            "page": ("page_param",),
        }[self.kind]
        for field in needed:
            if getattr(self, field) is None:
                raise _error(
                    "pagination_missing", ERR_PAGINATION_MISSING, field=field, kind=self.kind
                )
        return self
