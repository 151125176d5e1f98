"""Forms for service definitions. They only parse and shape input; services.services validates.

The auth-method section is built from the chosen method's params model (services.auth_methods),
so a new method brings its fields with it. Secret params are write-only password inputs.
Extra parameters are table rows of same-named inputs: blank rows are ignored, and the page can
add rows with the `data-add-row` helper, so the form is submittable without JavaScript.
The import and OpenAPI upload forms are in services.forms_io.
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin

from django import forms
from django.http import QueryDict

from services.auth_methods import REGISTRY, choices, get_method
from services.catalog import load_catalog

HEADER_LINE_INVALID = "Write one header per line as Name: value."
MAPPING_LINE_INVALID = "Write one name=value per line."
SECRET_KEEP = "Leave empty to keep the current secret."  # noqa: S105 - help text
SECRET_HELP = "Write-only: stored encrypted and never shown again."  # noqa: S105
PAGINATION_NONE = ""

YES_NO = [("no", "No"), ("yes", "Yes")]
HTTP_METHODS = [(m, m) for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")]
PAGINATION_KINDS = [
    (PAGINATION_NONE, "No pagination"),
    ("cursor", "Cursor (from the body, or a header with header:Name)"),
    ("link", "Link header rel=next (or a next URL in the body)"),
    ("offset", "Offset"),
    ("page", "Page number"),
]
_SPLIT = re.compile(r"[\s,]+")

# Labels and help for auth params, by field name; unknown fields get a humanized label.
FIELD_TEXT: dict[str, tuple[str, str]] = {
    "client_id": ("Client ID", "From the app you registered with the provider."),
    "client_secret": ("Client secret", SECRET_HELP),
    "grant_type": ("Grant type", "authorization_code: each user signs in at the provider. "
                   "client_credentials: the app itself, no user."),
    "authorize_url": ("Authorize URL", "Where users are sent to sign in and consent."),
    "token_url": ("Token URL", "Where codes and refresh tokens are exchanged for access tokens."),
    "scopes": ("Scopes", "Separated by spaces or commas."),
    "scope_separator": ("Scope separator", "How the scopes are joined in the request: a space "
                        "for most providers, a comma for some."),
    "pkce": ("Use PKCE (S256)", "Recommended; required when there is no client secret."),
    "token_placement": ("Where the access token goes", "bearer: Authorization: Bearer <token>; "
                        "header: a custom header; query: a query parameter."),
    "placement": ("Where the token goes", "bearer: Authorization: Bearer <token>; header: a "
                  "custom header with an optional prefix; query: a query parameter; basic: the "
                  "token as the HTTP Basic user name."),
    "header_name": ("Header name", "For placement header, e.g. X-Api-Key."),
    "prefix": ("Header value prefix", "Optional, e.g. Token → “Token abc123”."),
    "query_name": ("Query parameter name", "For placement query, e.g. api_key."),
    "extra_authorize_params": ("Extra authorize parameters", "One name=value per line, e.g. "
                               "access_type=offline or audience=https://api.example.com."),
    "extra_token_params": ("Extra token-request parameters", "One name=value per line."),
    "token_endpoint_auth": ("Client authentication at the token endpoint", "basic: an HTTP "
                            "Basic header; body: client_id and client_secret in the form body."),
    "expired_status_codes": ("Status codes that mean “token expired”", "Comma-separated; 401 "
                             "by default, some APIs answer 403."),
    "revoke_url": ("Revocation URL", "Optional: where tokens are revoked on disconnect."),
    "audience": ("Audience", "Optional, for providers that ask for one (Auth0)."),
    "connector": ("Connector", "Any authentication of this catalog connector can be used with "
                  "this service."),
    "consumer_key": ("Consumer key", ""),
    "consumer_secret": ("Consumer secret", SECRET_HELP),
    "rsa_private_key": ("RSA private key (PEM)", "For RSA-SHA1. " + SECRET_HELP),
    "signature_method": ("Signature method", ""),
    "signature_type": ("Where the signature goes", ""),
    "realm": ("Realm", "Optional."),
    "password_type": ("Password type", "PasswordDigest avoids sending the password in clear."),
    "soap_version": ("SOAP version", ""),
}  # fmt: skip


def _unwrap(annotation: Any) -> Any:
    """str | None -> str; Annotated is already stripped by pydantic."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _kind(annotation: Any) -> str:
    tp = _unwrap(annotation)
    origin = get_origin(tp)
    if origin is Literal:
        return "choice"
    if tp is bool:
        return "bool"
    if origin is list:
        return "list"
    if origin is dict:
        return "mapping"
    return "text"


def _to_text(kind: str, value: Any) -> Any:
    """A stored param value as the form shows it."""
    if value is None:
        return "" if kind != "bool" else False
    if kind == "list":
        sep = ", " if value and isinstance(value[0], int) else " "
        return sep.join(str(v) for v in value)
    if kind == "mapping":
        return "\n".join(f"{k}={v}" for k, v in value.items())
    return value


def parse_mapping(text: str) -> dict[str, str] | None:
    """name=value lines -> dict; None when a line has no '='."""
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        if "=" not in line:
            return None
        name, value = line.split("=", 1)
        out[name.strip()] = value.strip()
    return out


# Shown folded under "More settings", per method: most services never change them.
ADVANCED_FIELDS: dict[str, frozenset[str]] = {
    "oauth2": frozenset({
        "scope_separator", "header_name", "prefix", "query_name", "extra_authorize_params",
        "extra_token_params", "token_endpoint_auth", "expired_status_codes", "revoke_url",
        "audience",
    }),
    "oauth1": frozenset({"realm", "signature_type"}),
    "soap": frozenset({"soap_version"}),
}  # fmt: skip
# A secret param is shown right after the field it pairs with.
SECRET_AFTER = {"client_secret": "client_id", "consumer_secret": "consumer_key"}


class SecretTextarea(forms.Textarea):
    """A textarea for a multi-line secret (a PEM key) that never renders a value: a page shown
    again after a validation error must not echo the secret back."""

    def format_value(self, value: Any) -> str | None:
        return None


class AuthParamsForm(forms.Form):
    """Base of the generated per-method forms; cleaned_data["params"] is the service's dict."""

    method_key: str = "none"
    kinds: dict[str, str] = {}
    secret_keys: tuple[str, ...] = ()

    def __init__(self, *args: Any, stored_secrets: set[str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "auth")
        super().__init__(*args, **kwargs)
        for key in self.secret_keys:
            if stored_secrets and key in stored_secrets:
                self.fields[key].help_text = f"A secret is stored. {SECRET_KEEP}"

    @property
    def method(self) -> Any:
        return get_method(self.method_key)

    @property
    def _advanced(self) -> frozenset[str]:
        return ADVANCED_FIELDS.get(self.method_key, frozenset())

    def main_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name not in self._advanced]

    def advanced_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.advanced_fields_names()]

    def advanced_has_errors(self) -> bool:
        return self.is_bound and any(self[name].errors for name in self.advanced_fields_names())

    def advanced_fields_names(self) -> list[str]:
        return [name for name in self.fields if name in self._advanced]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        params: dict[str, Any] = {}
        for name, kind in self.kinds.items():
            value = data.get(name)
            if kind == "bool":
                params[name] = bool(value)
            elif kind == "list":
                parts = [p for p in _SPLIT.split(value or "") if p]
                if parts:
                    params[name] = parts
            elif kind == "mapping":
                mapping = parse_mapping(value or "")
                if mapping is None:
                    self.add_error(name, MAPPING_LINE_INVALID)
                elif mapping:
                    params[name] = mapping
            elif value not in (None, ""):
                params[name] = value
        for key in self.secret_keys:
            if data.get(key):
                params[key] = data[key]
        data["params"] = params
        return data


def _field_for(name: str, info: Any, kind: str) -> forms.Field:
    label, help_text = FIELD_TEXT.get(name, (name.replace("_", " ").capitalize(), ""))
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    common: dict[str, Any] = {"label": label, "help_text": help_text, "required": False}
    if name == "connector":
        options = [("", "— choose a connector —")] + [
            (key, c.name) for key, c in load_catalog().items()
        ]
        return forms.ChoiceField(choices=options, **common)
    if kind == "choice":
        options = [(str(a), str(a)) for a in get_args(_unwrap(info.annotation))]
        return forms.ChoiceField(choices=options, initial=default, **common)
    if kind == "bool":
        return forms.BooleanField(initial=bool(default), **common)
    if kind == "mapping":
        return forms.CharField(
            widget=forms.Textarea(attrs={"rows": 2}), initial=_to_text(kind, default), **common
        )
    strip = name != "scope_separator"
    return forms.CharField(initial=_to_text(kind, default), strip=strip, **common)


@functools.cache
def auth_params_form_class(method_key: str) -> type[AuthParamsForm]:
    """A form with one field per param of the method (plus its secret params)."""
    method = get_method(method_key)
    fields: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    for name, info in method.params_model.model_fields.items():
        kinds[name] = _kind(info.annotation)
        fields[name] = _field_for(name, info, kinds[name])
    for key in method.secret_param_keys:
        label, help_text = FIELD_TEXT.get(key, (key.replace("_", " ").capitalize(), SECRET_HELP))
        widget: forms.Widget = (
            SecretTextarea(attrs={"rows": 3, "autocomplete": "off"})
            if "private_key" in key
            else forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
        )
        secret = forms.CharField(
            label=label, help_text=help_text, required=False, strip=False, widget=widget
        )
        after = SECRET_AFTER.get(key)
        if after in fields:
            names = list(fields)
            position = names.index(after) + 1
            items = list(fields.items())
            fields = dict(items[:position] + [(key, secret)] + items[position:])
        else:
            fields[key] = secret
    if method.discouraged:
        fields["acknowledge_insecure"] = forms.BooleanField(
            required=False,
            label="I understand why this method is discouraged and want to use it anyway.",
        )
    attrs = {**fields, "method_key": method_key, "kinds": kinds,
             "secret_keys": tuple(method.secret_param_keys)}  # fmt: skip
    return type(f"{method_key.title()}ParamsForm", (AuthParamsForm,), attrs)


def auth_params_initial(method_key: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Stored (or catalog / OpenAPI) auth params as initial form values.

    All three have the method's params shape; unknown keys are dropped.
    """
    form_class = auth_params_form_class(method_key)
    return {
        name: _to_text(kind, params[name])
        for name, kind in form_class.kinds.items()
        if params.get(name) is not None
    }


class ServiceForm(forms.Form):
    """Basics, auth method choice, test request, pagination and default headers."""

    name = forms.CharField(max_length=120, label="Name")
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Description"
    )
    base_url = forms.CharField(
        max_length=500,
        label="Base URL",
        help_text="http:// or https://, without user name or password. Templates such as "
        "https://{{auth.subdomain}}.zendesk.com/api/v2 take their value from each "
        "authentication.",
    )
    confirm_origin_change = forms.BooleanField(
        required=False,
        label="Confirm the new host",
        help_text="Other people's authentications use this service: their credentials go to "
        "the new host with their next call.",
    )
    auth_method = forms.ChoiceField(label="Authentication method", choices=choices)
    workspace = forms.UUIDField(required=False, widget=forms.HiddenInput)
    test_method = forms.ChoiceField(choices=HTTP_METHODS, initial="GET", label="Method")
    test_path = forms.CharField(
        required=False, max_length=2000, label="Path",
        help_text="A harmless call that shows the credentials work, e.g. /me.",
    )  # fmt: skip
    pagination_kind = forms.ChoiceField(
        choices=PAGINATION_KINDS, required=False, label="Pagination"
    )
    pagination_cursor_path = forms.CharField(
        required=False, label="Cursor / next-URL path",
        help_text="Dotted path in the response body, e.g. meta.next_cursor, or header:X-Next.",
    )  # fmt: skip
    pagination_cursor_param = forms.CharField(
        required=False, label="Cursor / offset query parameter"
    )
    pagination_limit_param = forms.CharField(required=False, label="Page size query parameter")
    pagination_page_param = forms.CharField(required=False, label="Page number query parameter")
    pagination_items_path = forms.CharField(
        required=False, label="Items path", help_text="Where the list sits, e.g. data.items."
    )
    default_headers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Headers sent with every call",
        help_text="One per line as Name: value, e.g. Notion-Version: 2022-06-28.",
    )
    source = forms.CharField(required=False, widget=forms.HiddenInput)
    source_detail = forms.CharField(required=False, widget=forms.HiddenInput)
    endpoints = forms.JSONField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, method_fields_url: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if method_fields_url:
            self.fields["auth_method"].widget.attrs.update({
                "hx-get": method_fields_url, "hx-trigger": "change",
                "hx-target": "#auth-method-fields", "hx-swap": "outerHTML",
            })  # fmt: skip

    def clean_default_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for line in (self.cleaned_data.get("default_headers") or "").splitlines():
            if not line.strip():
                continue
            if ":" not in line:
                raise forms.ValidationError(HEADER_LINE_INVALID)
            name, value = line.split(":", 1)
            headers[name.strip()] = value.strip()
        return headers

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        path = data.get("test_path") or ""
        data["test_request"] = {"method": data.get("test_method") or "GET", "path": path} \
            if path else None  # fmt: skip
        kind = data.get("pagination_kind") or PAGINATION_NONE
        pagination = None
        if kind:
            pagination = {"kind": kind}
            for name in ("cursor_path", "cursor_param", "limit_param", "page_param", "items_path"):
                if data.get(f"pagination_{name}"):
                    pagination[name] = data[f"pagination_{name}"]
        data["pagination"] = pagination
        return data


def service_initial(values: Mapping[str, Any]) -> dict[str, Any]:
    """A definition (a Service's fields, a connector, an OpenAPI draft) as ServiceForm initial."""
    test = values.get("test_request") or {}
    pages = values.get("pagination") or {}
    headers = values.get("default_headers") or {}
    initial = {
        "name": values.get("name", ""),
        "description": values.get("description", ""),
        "base_url": values.get("base_url", ""),
        "auth_method": values.get("auth_method", "none"),
        "test_method": test.get("method", "GET"),
        "test_path": test.get("path", ""),
        "pagination_kind": pages.get("kind", PAGINATION_NONE),
        "default_headers": "\n".join(f"{k}: {v}" for k, v in headers.items()),
        "source": values.get("source", ""),
        "source_detail": values.get("source_detail", ""),
        "endpoints": values.get("endpoints") or None,
    }
    for name in ("cursor_path", "cursor_param", "limit_param", "page_param", "items_path"):
        initial[f"pagination_{name}"] = pages.get(name) or ""
    return initial


ROW_FIELDS = ("key", "label", "required", "secret", "default", "help", "pattern", "example")
_ROW_TEXT = ("key", "label", "default", "help", "pattern", "example")


class ExtraParamRows:
    """The "Authentication parameters" table: rows of same-named inputs (`param-<field>`)."""

    blank_rows = 2

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = [{**row, "errors": {}} for row in rows]

    @classmethod
    def from_params(cls, params: Sequence[Mapping[str, Any]]) -> ExtraParamRows:
        rows = []
        for p in params:
            row: dict[str, Any] = {f: "" if p.get(f) is None else str(p.get(f)) for f in _ROW_TEXT}
            row.update(required=bool(p.get("required")), secret=bool(p.get("secret")))
            rows.append(row)
        return cls(rows)

    @classmethod
    def from_post(cls, data: QueryDict) -> ExtraParamRows:
        columns = {f: data.getlist(f"param-{f}") for f in ROW_FIELDS}
        count = max((len(v) for v in columns.values()), default=0)
        rows = []
        for i in range(count):
            row: dict[str, Any] = {
                f: (columns[f][i] if i < len(columns[f]) else "").strip() for f in _ROW_TEXT
            }
            if not any(row.values()):
                continue  # a blank row: nothing entered
            for flag in ("required", "secret"):
                row[flag] = i < len(columns[flag]) and columns[flag][i] == "yes"
            rows.append(row)
        return cls(rows)

    def cleaned(self) -> list[dict[str, Any]]:
        """Rows as extra_params dicts for the service (empty optional values left out)."""
        out = []
        for row in self.rows:
            item: dict[str, Any] = {"key": row["key"], "label": row["label"],
                                    "required": row["required"], "secret": row["secret"],
                                    "help": row["help"]}  # fmt: skip
            for name in ("default", "pattern", "example"):
                if row[name]:
                    item[name] = row[name]
            out.append(item)
        return out

    def add_error(self, index: int, field: str, message: str) -> None:
        if 0 <= index < len(self.rows):
            self.rows[index]["errors"].setdefault(field, []).append(message)

    @property
    def has_errors(self) -> bool:
        return any(row["errors"] for row in self.rows)

    @property
    def display_rows(self) -> list[dict[str, Any]]:
        blank = {f: "" for f in _ROW_TEXT} | {"required": False, "secret": False, "errors": {}}
        return self.rows + [dict(blank) for _ in range(self.blank_rows)]


class TransferForm(forms.Form):
    to = forms.ChoiceField(label="New owner")

    def __init__(self, *args: Any, targets: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["to"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101 - narrowing
        field.choices = targets


class DeleteForm(forms.Form):
    confirm = forms.BooleanField(required=False)


def method_key_or_default(value: Any, default: str = "none") -> str:
    return value if isinstance(value, str) and value in REGISTRY else default
