"""The new/edit service form: each auth method's fields and validation, errors next to inputs."""

from __future__ import annotations

from typing import Any

import pytest

from services import services as svc
from services.auth_methods import ACK_REQUIRED
from services.auth_methods import oauth2 as oauth2_method
from services.auth_methods.base import HEADER_NAME_REQUIRED, QUERY_NAME_REQUIRED
from services.auth_methods.oauth1 import DISCOURAGED_REASON as OAUTH1_REASON
from services.auth_methods.soap import DISCOURAGED_REASON as SOAP_REASON
from services.forms import HEADER_LINE_INVALID, MAPPING_LINE_INVALID, SECRET_KEEP
from services.models import Service
from services.schemas import ERR_PATTERN_INVALID, ERR_URL_USERINFO
from services.templating import UNKNOWN_AUTH_KEY
from workspaces.services import workspace_create_shared

pytestmark = pytest.mark.django_db

NEW = "/o/org-a/services/new/"
CLIENT_SECRET = "form-secret-9f8e7d"


def form(method: str = "none", params: list[dict[str, str]] | None = None, **fields: Any) -> dict:
    """POST data as the browser sends it: auth fields prefixed, parameter rows as lists."""
    data: dict[str, Any] = {
        "name": "Demo",
        "base_url": "https://api.example.com/v1",
        "auth_method": method,
        "test_method": "GET",
        "test_path": "/me",
    }
    for key, value in fields.items():
        data[key if not key.startswith("a_") else "auth-" + key[2:]] = value
    rows = params or []
    for column in ("key", "label", "required", "secret", "default", "help", "pattern", "example"):
        blank = "no" if column in ("required", "secret") else ""
        data[f"param-{column}"] = [r.get(column, blank) for r in rows] + [blank, blank]
    return data


def errors_in(response: Any) -> str:
    return response.content.decode()


OAUTH2 = {
    "a_client_id": "abc",
    "a_client_secret": CLIENT_SECRET,
    "a_authorize_url": "https://accounts.spotify.com/authorize",
    "a_token_url": "https://accounts.spotify.com/api/token",
    "a_scopes": "user-read-email, user-read-private",
    "a_pkce": "on",
    "a_grant_type": "authorization_code",
    "a_token_placement": "bearer",
    "a_token_endpoint_auth": "basic",
    "a_expired_status_codes": "401, 403",
    "a_extra_authorize_params": "access_type=offline\nprompt=consent",
    "a_scope_separator": " ",
}

VALID = [
    ("none", {}),
    ("token", {"a_placement": "header", "a_header_name": "X-Api-Key", "a_prefix": "Token"}),
    ("token", {"a_placement": "query", "a_query_name": "api_key"}),
    ("basic", {}),
    ("digest", {}),
    ("oauth2", OAUTH2),
    (
        "oauth1",
        {
            "a_consumer_key": "ck",
            "a_consumer_secret": "cs",
            "a_signature_method": "HMAC-SHA1",
            "a_signature_type": "header",
            "a_acknowledge_insecure": "on",
        },
    ),  # fmt: skip
    (
        "soap",
        {
            "a_password_type": "PasswordDigest",
            "a_soap_version": "1.1",
            "a_acknowledge_insecure": "on",
        },
    ),  # fmt: skip
    ("preexisting", {"a_connector": "github"}),
]


@pytest.mark.parametrize(("method", "fields"), VALID)
def test_each_auth_method_saves_through_the_form(actors, client_for, method, fields) -> None:  # type: ignore[no-untyped-def]
    response = client_for(actors.member).post(NEW, form(method, **fields))
    assert response.status_code == 302, errors_in(response)
    service = Service.objects.get()
    assert response["Location"] == service.get_absolute_url()
    assert service.auth_method == method
    assert service.owner_workspace == actors.member_m.personal_workspace
    assert service.test_request == {"method": "GET", "path": "/me"}
    if method == "oauth2":
        assert service.auth_params["scopes"] == ["user-read-email", "user-read-private"]
        assert service.auth_params["expired_status_codes"] == [401, 403]
        assert service.auth_params["extra_authorize_params"] == {
            "access_type": "offline", "prompt": "consent"}  # fmt: skip
        assert service.get_secret_params() == {"client_secret": CLIENT_SECRET}
        assert CLIENT_SECRET not in str(service.auth_params)
    if method in ("oauth1", "soap"):
        assert service.acknowledged_insecure is True


INVALID = [
    ("token", {"a_placement": "header"}, HEADER_NAME_REQUIRED),
    ("token", {"a_placement": "query"}, QUERY_NAME_REQUIRED),
    ("oauth2", {**OAUTH2, "a_token_url": ""}, oauth2_method.TOKEN_URL_REQUIRED),
    (
        "oauth2",
        {**OAUTH2, "a_grant_type": "client_credentials", "a_client_secret": "", "a_pkce": ""},
        oauth2_method.CLIENT_SECRET_REQUIRED,
    ),  # fmt: skip
    ("oauth2", {**OAUTH2, "a_expired_status_codes": "200"}, oauth2_method.STATUS_CODE_INVALID),
    ("oauth2", {**OAUTH2, "a_extra_authorize_params": "no equals sign"}, MAPPING_LINE_INVALID),
    ("oauth1", {"a_consumer_key": "ck", "a_consumer_secret": "cs"}, ACK_REQUIRED),
    ("soap", {}, ACK_REQUIRED),
]


@pytest.mark.parametrize(("method", "fields", "message"), INVALID)
def test_each_auth_method_shows_field_errors_and_saves_nothing(  # type: ignore[no-untyped-def]
    actors, client_for, method, fields, message
) -> None:
    response = client_for(actors.member).post(NEW, form(method, **fields))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Service.objects.exists()
    assert CLIENT_SECRET not in response.content.decode()  # a secret is never echoed back


def test_discouraged_methods_explain_why(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for(actors.member)
    from django.utils.html import escape

    for method, reason in (("oauth1", OAUTH1_REASON), ("soap", SOAP_REASON)):
        page = client.get(NEW + f"?auth_method={method}").content.decode()
        assert escape(reason) in page
        assert 'name="auth-acknowledge_insecure"' in page


def test_method_fields_follow_the_chosen_method_without_javascript(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for(actors.member)
    page = client.get(NEW).content.decode()
    assert 'name="auth-client_id"' not in page
    page = client.get(NEW + "?auth_method=oauth2").content.decode()
    assert 'name="auth-client_id"' in page and 'name="auth-client_secret"' in page
    # The "Show the fields for this method" button re-renders with the input kept, unsaved.
    data = form("oauth2", name="Kept name")
    data["_refresh"] = "1"
    response = client.post(NEW, data)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="auth-token_url"' in body and 'value="Kept name"' in body
    assert "field-error" not in body
    assert not Service.objects.exists()


def test_htmx_gets_only_the_method_fieldset(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    response = client_for(actors.member).get(NEW + "?auth_method=token", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="auth-method-fields"')
    assert 'name="auth-placement"' in body and "<html" not in body


def test_oauth_redirect_uri_is_shown_while_filling_in(actors, client_for, settings) -> None:  # type: ignore[no-untyped-def]
    settings.TRAYSVC_PUBLIC_URL = "https://svc.example.org"
    page = client_for(actors.member).get(NEW + "?auth_method=oauth2").content.decode()
    assert "https://svc.example.org/oauth2/callback" in page


def test_form_says_services_go_to_the_personal_workspace(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    page = client_for(actors.member).get(NEW).content.decode()
    assert "Created in your personal workspace" in page
    assert actors.member_m.personal_workspace.name in page


def test_shared_workspace_is_refused_with_an_explanation(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    shared = workspace_create_shared(organization=actors.org_a, name="Team", actor=actors.owner_m)
    response = client_for(actors.owner).post(NEW, form(workspace=str(shared.public_id)))
    assert response.status_code == 400
    assert svc.SHARED_WORKSPACE_REFUSED in response.content.decode()
    assert not Service.objects.exists()


def test_extra_params_rows_are_saved_and_blank_rows_ignored(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    rows = [{"key": "subdomain", "label": "Subdomain", "required": "yes", "help": "acme",
             "pattern": "^[a-z0-9-]+$", "example": "acme"},
            {"key": "api_key", "label": "API key", "secret": "yes"}]  # fmt: skip
    data = form(
        "token",
        params=rows,
        base_url="https://{{auth.subdomain}}.zendesk.com/api/v2",
        default_headers="X-Key: {{auth.api_key}}\nAccept: application/json",
    )
    data["param-required"][1] = "yes"
    response = client_for(actors.member).post(NEW, data)
    assert response.status_code == 302, errors_in(response)
    service = Service.objects.get()
    assert [p["key"] for p in service.extra_params] == ["subdomain", "api_key"]
    assert service.extra_params[0]["required"] is True and service.extra_params[1]["secret"]
    assert service.extra_params[0]["pattern"] == "^[a-z0-9-]+$"
    assert service.default_headers == {"X-Key": "{{auth.api_key}}", "Accept": "application/json"}


def test_unknown_template_keys_are_field_errors_at_save(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    data = form("none", base_url="https://{{auth.tenant}}.example.com", test_path="/{{auth.id}}",
                default_headers="X-Team: {{auth.team}}")  # fmt: skip
    response = client_for(actors.member).post(NEW, data)
    assert response.status_code == 400
    body = response.content.decode()
    from django.utils.html import escape

    for key in ("tenant", "id", "team"):
        assert escape(UNKNOWN_AUTH_KEY.format(ref="{{auth.%s}}" % key, key=key)) in body  # noqa: UP031
    assert not Service.objects.exists()


def test_bad_rows_headers_and_urls_are_field_errors(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    from django.utils.html import escape

    client = client_for(actors.member)
    bad_pattern = form(params=[{"key": "x", "label": "X", "pattern": "("}])
    body = client.post(NEW, bad_pattern).content.decode()
    assert "is not a valid regular expression" in body
    assert ERR_PATTERN_INVALID.split(":")[0] in body
    body = client.post(NEW, form(default_headers="no colon here")).content.decode()
    assert escape(HEADER_LINE_INVALID) in body
    body = client.post(NEW, form(base_url="https://me:pw@api.example.com")).content.decode()
    assert escape(svc.BASE_URL_INVALID.format(problem=ERR_URL_USERINFO)) in body
    assert not Service.objects.exists()


def test_duplicate_name_is_a_field_error(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for(actors.member)
    assert client.post(NEW, form(name="Stripe")).status_code == 302
    response = client_for(actors.admin).post(NEW, form(name="Stripe"))
    assert response.status_code == 400
    from django.utils.html import escape

    assert escape(svc.NAME_TAKEN.format(name="Stripe")) in response.content.decode()
    assert Service.objects.count() == 1


def test_client_secret_is_write_only_on_edit(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for(actors.member)
    client.post(NEW, form("oauth2", **OAUTH2))
    service = Service.objects.get()
    edit = f"/o/org-a/services/{service.public_id}/edit/"
    page = client.get(edit).content.decode()
    assert CLIENT_SECRET not in page
    assert SECRET_KEEP in page
    assert client.post(edit, form("oauth2", **{**OAUTH2, "a_client_secret": ""},
                                  name="Renamed")).status_code == 302  # fmt: skip
    service.refresh_from_db()
    assert service.name == "Renamed"
    assert service.get_secret_params() == {"client_secret": CLIENT_SECRET}
    client.post(edit, form("oauth2", **{**OAUTH2, "a_client_secret": "new-one"}, name="Renamed"))
    service.refresh_from_db()
    assert service.get_secret_params() == {"client_secret": "new-one"}
