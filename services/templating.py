"""`{{auth.KEY}}` / `{{service.KEY}}` templates in base URLs, paths, headers and query values.

One small engine that the service form (validation at save time) and the runner (rendering at
call time) share, so a template accepted when a service is saved is one the runner can render.

- `{{auth.KEY}}` is the value of extra parameter KEY, entered per authentication (falls back to
  the parameter's default). Example: `https://{{auth.subdomain}}.zendesk.com/api/v2`.
- `{{service.KEY}}` is one of the service's own fields, `SERVICE_KEYS` (name, slug, base_url).

Plain Python (no Django), so the runner and the tests use it without a database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

AUTH = "auth"
SERVICE = "service"
NAMESPACES = (AUTH, SERVICE)
SERVICE_KEYS = frozenset({"name", "slug", "base_url"})

# The same grammar as services.schemas (the catalog's validator): {{ ns.key }}, spaces allowed.
_TEMPLATE = re.compile(r"\{\{(.*?)\}\}")
_REF = re.compile(r"^\s*([a-z]+)\.([a-z][a-z0-9_]*)\s*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

EXAMPLE = "{{auth.KEY}}"
MALFORMED = "Malformed template {template}: templates look like {example}."
UNKNOWN_NAMESPACE = "Unknown template {ref}: use {{{{auth.KEY}}}} or {{{{service.KEY}}}}."
UNKNOWN_AUTH_KEY = (
    "Unknown template key {ref}: add “{key}” to the authentication parameters, or fix the name."
)
UNKNOWN_SERVICE_KEY = "Unknown template key {ref}: a service offers {keys}."
OPTIONAL_KEY = (
    "{ref} is used here, so the authentication parameter “{key}” must be required or have a "
    "default."
)
SELF_REFERENCE = "{ref} cannot be used inside the base URL itself."
MISSING_VALUE = "{ref} has no value: enter “{key}” on the authentication."
MISSING_SERVICE_VALUE = "{ref} has no value on this service."
VALUE_CONTROL_CHARS = "The value of {ref} contains a line break or control character."


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; the message is for the user."""

    def __init__(self, message: str, ref: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.ref = ref


def _refs(text: str) -> list[tuple[str, str, str]]:
    """(namespace, key, the template as written) for each template; TemplateError if malformed."""
    found = []
    for match in _TEMPLATE.finditer(text):
        ref = _REF.match(match.group(1))
        if ref is None:
            raise TemplateError(MALFORMED.format(template=match.group(0), example=EXAMPLE))
        found.append((ref.group(1), ref.group(2), match.group(0)))
    rest = _TEMPLATE.sub("", text)
    if "{{" in rest or "}}" in rest:
        raise TemplateError(MALFORMED.format(template=text, example=EXAMPLE))
    return found


def template_keys(text: str) -> set[tuple[str, str]]:
    """The (namespace, key) pairs a text refers to, e.g. {("auth", "subdomain")}."""
    return {(ns, key) for ns, key, _ in _refs(text or "")}


def has_templates(text: str) -> bool:
    return bool(text) and "{{" in text


def render(
    text: str,
    *,
    auth: Mapping[str, Any],
    service: Mapping[str, Any],
    escape: Callable[[str], str] | None = None,
) -> str:
    """Replace every template with its value; `escape` (e.g. URL quoting) is applied to values.

    Raises TemplateError naming the template when a value is missing or unsafe (a line break
    would let a value inject a header).
    """
    if not has_templates(text):
        return text
    _refs(text)  # malformed text fails before anything is substituted

    def substitute(match: re.Match[str]) -> str:
        ref = _REF.match(match.group(1))
        assert ref is not None  # noqa: S101 - checked by _refs above
        namespace, key = ref.group(1), ref.group(2)
        label = f"{{{{{namespace}.{key}}}}}"
        if namespace == AUTH:
            values: Mapping[str, Any] = auth
            missing = MISSING_VALUE.format(ref=label, key=key)
        elif namespace == SERVICE:
            values, missing = service, MISSING_SERVICE_VALUE.format(ref=label)
        else:
            raise TemplateError(UNKNOWN_NAMESPACE.format(ref=label), label)
        value = values.get(key)
        if value is None or value == "":
            raise TemplateError(missing, label)
        value = str(value)
        if _CONTROL.search(value):
            raise TemplateError(VALUE_CONTROL_CHARS.format(ref=label), label)
        return escape(value) if escape is not None else value

    return _TEMPLATE.sub(substitute, text)


def auth_values(extra_params: Iterable[Mapping[str, Any]], values: Mapping[str, Any]) -> dict:
    """The `auth` mapping for render(): an authentication's values over the params' defaults."""
    out: dict[str, Any] = {}
    for param in extra_params:
        key = param.get("key")
        if not key:
            continue
        value = values.get(key)
        if value in (None, ""):
            value = param.get("default")
        if value not in (None, ""):
            out[key] = value
    return out


def service_values(*, name: str, slug: str, base_url: str) -> dict[str, str]:
    """The `service` mapping for render()."""
    return {"name": name, "slug": slug, "base_url": base_url}


def validate_templates(
    fields: Mapping[str, str],
    *,
    extra_params: Iterable[Mapping[str, Any]],
    base_url_field: str = "base_url",
) -> dict[str, list[str]]:
    """Check every template in `fields` (field path -> text) against the declared extra params.

    Returns field path -> messages; empty when all is well. A key that is neither declared nor
    a service field is an error now, not a failed call later; so is a declared key that is
    optional without a default, because the call would fail whenever it is left empty.
    """
    params = {p["key"]: p for p in extra_params if p.get("key")}
    errors: dict[str, list[str]] = {}
    for field, text in fields.items():
        if not text or ("{" not in text and "}" not in text):
            continue
        try:
            refs = _refs(text)
        except TemplateError as exc:
            errors.setdefault(field, []).append(exc.message)
            continue
        for namespace, key, _written in refs:
            message = _problem(namespace, key, params, is_base_url=field == base_url_field)
            if message and message not in errors.get(field, []):
                errors.setdefault(field, []).append(message)
    return errors


def _problem(
    namespace: str, key: str, params: Mapping[str, Mapping[str, Any]], *, is_base_url: bool
) -> str | None:
    ref = f"{{{{{namespace}.{key}}}}}"
    if namespace == AUTH:
        param = params.get(key)
        if param is None:
            return UNKNOWN_AUTH_KEY.format(ref=ref, key=key)
        if not param.get("required") and param.get("default") in (None, ""):
            return OPTIONAL_KEY.format(ref=ref, key=key)
        return None
    if namespace == SERVICE:
        if key not in SERVICE_KEYS:
            return UNKNOWN_SERVICE_KEY.format(ref=ref, keys=", ".join(sorted(SERVICE_KEYS)))
        if is_base_url and key == "base_url":
            return SELF_REFERENCE.format(ref=ref)
        return None
    return UNKNOWN_NAMESPACE.format(ref=ref)
