"""The {{auth.KEY}} / {{service.KEY}} engine: parsing, rendering, and validation at save time."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from services import templating as t

PARAMS = [
    {"key": "subdomain", "label": "Subdomain", "required": True},
    {"key": "region", "label": "Region", "required": False, "default": "eu"},
    {"key": "note", "label": "Note", "required": False},
]


def test_template_keys_lists_namespace_and_key() -> None:
    text = "https://{{auth.subdomain}}.zendesk.com/{{ service.slug }}/x"
    assert t.template_keys(text) == {("auth", "subdomain"), ("service", "slug")}
    assert t.template_keys("/users/{id}") == set()


def test_render_substitutes_values_and_escapes_only_values() -> None:
    text = "https://{{auth.subdomain}}.example.com/{{service.slug}}/q?x={{auth.q}}"
    out = t.render(
        text,
        auth={"subdomain": "acme", "q": "a b&c"},
        service={"slug": "svc"},
        escape=lambda v: quote(v, safe=""),
    )
    assert out == "https://acme.example.com/svc/q?x=a%20b%26c"


def test_render_names_the_missing_value() -> None:
    with pytest.raises(t.TemplateError) as info:
        t.render("https://{{auth.subdomain}}.x.com", auth={}, service={})
    assert info.value.message == t.MISSING_VALUE.format(ref="{{auth.subdomain}}", key="subdomain")
    with pytest.raises(t.TemplateError) as info:
        t.render("{{service.name}}", auth={}, service={})
    assert info.value.message == t.MISSING_SERVICE_VALUE.format(ref="{{service.name}}")


def test_render_refuses_a_value_with_a_line_break() -> None:
    with pytest.raises(t.TemplateError) as info:
        t.render("X {{auth.k}}", auth={"k": "a\r\nHost: evil"}, service={})
    assert info.value.message == t.VALUE_CONTROL_CHARS.format(ref="{{auth.k}}")


def test_render_refuses_malformed_templates() -> None:
    for text in ("{{auth.Sub-domain}}", "{{auth}}", "{{ x }}", "https://{{auth.a}.x"):
        with pytest.raises(t.TemplateError):
            t.render(text, auth={"a": "1"}, service={})


def test_auth_values_fall_back_to_defaults() -> None:
    assert t.auth_values(PARAMS, {"subdomain": "acme", "note": ""}) == {
        "subdomain": "acme", "region": "eu"}  # fmt: skip


def test_validate_templates_accepts_declared_keys() -> None:
    fields = {"base_url": "https://{{auth.subdomain}}.x.com/{{auth.region}}",
              "test_request.path": "/users/{{service.slug}}/{id}"}  # fmt: skip
    assert t.validate_templates(fields, extra_params=PARAMS) == {}


def test_validate_templates_reports_each_problem_on_its_field() -> None:
    fields = {
        "base_url": "https://{{auth.tenant}}.x.com/{{service.base_url}}",
        "test_request.path": "/{{auth.note}}",
        "default_headers.X-Team": "{{team.id}}",
        "auth_params.token_url": "https://{{service.owner}}.x.com",
        "auth_params.authorize_url": "https://{{auth.x",
    }
    errors = t.validate_templates(fields, extra_params=PARAMS)
    assert errors["base_url"] == [
        t.UNKNOWN_AUTH_KEY.format(ref="{{auth.tenant}}", key="tenant"),
        t.SELF_REFERENCE.format(ref="{{service.base_url}}"),
    ]
    assert errors["test_request.path"] == [t.OPTIONAL_KEY.format(ref="{{auth.note}}", key="note")]
    assert errors["default_headers.X-Team"] == [t.UNKNOWN_NAMESPACE.format(ref="{{team.id}}")]
    assert errors["auth_params.token_url"] == [
        t.UNKNOWN_SERVICE_KEY.format(ref="{{service.owner}}", keys="base_url, name, slug")
    ]
    assert errors["auth_params.authorize_url"] == [
        t.MALFORMED.format(template="https://{{auth.x", example=t.EXAMPLE)
    ]
