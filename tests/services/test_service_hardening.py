"""Bad base URLs are field errors (never a 500), and nothing secret-looking is shown org-wide:
no default on a secret parameter, no literal credential in default headers, and a private key
is never echoed back by the form."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from services import service_io
from services import services as svc
from services.models import Service
from services.openapi_import import SERVER_URL_SCHEME, OpenAPIImportError, parse_openapi
from services.schemas import ERR_SECRET_DEFAULT, ERR_URL_INVALID, ERR_URL_PORT
from workspaces.services import api_key_create

pytestmark = pytest.mark.django_db

BAD_IPV6 = "https://[::1"
BAD_PORT = "https://a.example.com:99999"
IPV6_ERROR = svc.BASE_URL_INVALID.format(problem=ERR_URL_INVALID.format(error="Invalid IPv6 URL"))
PORT_ERROR = svc.BASE_URL_INVALID.format(problem=ERR_URL_PORT)
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-PRIVATE-KEY-BODY-4f3e2d"


def _api(membership: Any) -> Client:
    _key, full = api_key_create(membership=membership)
    return Client(headers={"Authorization": f"Bearer {full}"})


def _post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json")


# ---- base URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "message"), [(BAD_IPV6, IPV6_ERROR), (BAD_PORT, PORT_ERROR),
                                              ("https://a.example.com:0", PORT_ERROR),
                                              ("https://a.example.com:http", PORT_ERROR)])  # fmt: skip
def test_api_create_with_a_broken_base_url_is_a_field_error(actors, url, message) -> None:  # type: ignore[no-untyped-def]
    response = _post(_api(actors.member_m), "/api/v1/services", {
        "name": "z2", "base_url": url, "auth_method": "token",
        "auth_params": {"placement": "bearer"},
    })  # fmt: skip
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == {"base_url": [message]}
    assert not Service.objects.exists()


def test_api_patch_with_a_broken_base_url_is_a_field_error(actors) -> None:  # type: ignore[no-untyped-def]
    service = svc.service_create(
        membership=actors.member_m, name="Fine", base_url="https://api.example.com",
        auth_method="none",
    )  # fmt: skip
    client = _api(actors.member_m)
    for url, message in ((BAD_IPV6, IPV6_ERROR), (BAD_PORT, PORT_ERROR)):
        response = client.patch(f"/api/v1/services/{service.public_id}", {"base_url": url},
                                content_type="application/json")  # fmt: skip
        assert response.status_code == 422, response.content
        assert response.json()["errors"] == {"base_url": [message]}
    assert Service.objects.get().base_url == "https://api.example.com"


def test_the_form_shows_a_broken_base_url_next_to_the_field(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    data = {"name": "Demo", "base_url": BAD_IPV6, "auth_method": "none", "test_method": "GET"}
    response = client_for(actors.member).post("/o/org-a/services/new/", data)
    assert response.status_code == 400
    assert "Invalid IPv6 URL" in response.content.decode()
    response = client_for(actors.member).post("/o/org-a/services/new/",
                                              {**data, "base_url": BAD_PORT})  # fmt: skip
    assert response.status_code == 400
    assert ERR_URL_PORT in response.content.decode()
    assert not Service.objects.exists()


def test_an_import_with_a_broken_base_url_is_a_field_error(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    document = {"format": service_io.EXPORT_FORMAT, "version": 1, "name": "Imported",
                "base_url": BAD_PORT, "auth_method": "none"}  # fmt: skip
    with pytest.raises(ValidationError) as info:
        service_io.service_import(membership=actors.member_m, data=json.dumps(document))
    assert info.value.message_dict == {"base_url": [PORT_ERROR]}
    page = client_for(actors.member).post(
        "/o/org-a/services/import/", {"text": json.dumps({**document, "base_url": BAD_IPV6})}
    )
    assert page.status_code == 400
    assert "Invalid IPv6 URL" in page.content.decode()
    assert not Service.objects.exists()


@pytest.mark.parametrize("server", [BAD_IPV6, BAD_PORT])
def test_an_openapi_server_url_that_does_not_parse_is_refused_in_words(
    actors, client_for, server
) -> None:  # type: ignore[no-untyped-def]
    spec = json.dumps({"openapi": "3.0.0", "info": {"title": "T", "version": "1"},
                       "servers": [{"url": server}], "paths": {}})  # fmt: skip
    with pytest.raises(OpenAPIImportError) as info:
        parse_openapi(spec)
    assert info.value.message == SERVER_URL_SCHEME
    page = client_for(actors.member).post("/o/org-a/services/import/openapi/", {"text": spec})
    assert page.status_code == 400
    assert SERVER_URL_SCHEME in page.content.decode()


# ---- secret-looking values shown org-wide -------------------------------------------------------


def test_a_secret_extra_param_cannot_have_a_default(actors) -> None:  # type: ignore[no-untyped-def]
    response = _post(_api(actors.member_m), "/api/v1/services", {
        "name": "Defaults", "base_url": "https://api.example.com", "auth_method": "none",
        "extra_params": [{"key": "api_key", "label": "API key", "secret": True,
                          "default": "sk_live_shown_to_everyone"}],
    })  # fmt: skip
    assert response.status_code == 422
    assert response.json()["errors"] == {"extra_params.0": [ERR_SECRET_DEFAULT]}
    assert "sk_live_shown_to_everyone" not in response.content.decode()


@pytest.mark.parametrize(
    "name",
    ["X-Api-Key", "x-api-key", "Cookie", "Proxy-Authorization", "X-Auth-Token", "Client-Secret",
     "X-Password", "Private-Key"],
)  # fmt: skip
def test_a_credential_looking_default_header_with_a_literal_value_is_refused(actors, name) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as info:
        svc.service_create(
            membership=actors.member_m, name="Headers", base_url="https://api.example.com",
            auth_method="none", default_headers={name: "literal-credential-123"},
        )  # fmt: skip
    assert info.value.message_dict == {
        f"default_headers.{name}": [svc.HEADER_SENSITIVE.format(name=name)]
    }
    assert "{{auth.KEY}}" in svc.HEADER_SENSITIVE.format(name=name)


def test_a_credential_header_may_take_its_value_from_a_secret_param(actors) -> None:  # type: ignore[no-untyped-def]
    params = [{"key": "api_key", "label": "API key", "secret": True, "required": True},
              {"key": "team", "label": "Team", "required": True}]  # fmt: skip
    service = svc.service_create(
        membership=actors.member_m, name="Headers", base_url="https://api.example.com",
        auth_method="none", extra_params=params,
        default_headers={"X-Api-Key": "Key {{auth.api_key}}", "Accept": "application/json",
                         "X-GitHub-Api-Version": "2022-11-28"},
    )  # fmt: skip
    assert service.default_headers["X-Api-Key"] == "Key {{auth.api_key}}"
    # a non-secret parameter is shown to everyone too: refused
    with pytest.raises(ValidationError) as info:
        svc.service_update(
            service=service, actor=actors.member_m, name="Headers",
            base_url="https://api.example.com", auth_method="none", extra_params=params,
            default_headers={"X-Api-Key": "{{auth.team}}"},
        )  # fmt: skip
    assert info.value.message_dict == {
        "default_headers.X-Api-Key": [svc.HEADER_SENSITIVE.format(name="X-Api-Key")]
    }


def test_the_api_refuses_a_credential_header_as_a_field_error(actors) -> None:  # type: ignore[no-untyped-def]
    response = _post(_api(actors.member_m), "/api/v1/services", {
        "name": "H", "base_url": "https://api.example.com", "auth_method": "none",
        "default_headers": {"Cookie": "session=abc123"},
    })  # fmt: skip
    assert response.status_code == 422
    assert response.json()["errors"] == {
        "default_headers.Cookie": [svc.HEADER_SENSITIVE.format(name="Cookie")]
    }


def test_the_rsa_private_key_is_not_echoed_back_after_a_validation_error(
    actors, client_for
) -> None:  # type: ignore[no-untyped-def]
    pem = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n"
    data = {
        "name": "", "base_url": "https://api.example.com", "auth_method": "oauth1",
        "test_method": "GET", "auth-consumer_key": "ck", "auth-signature_method": "RSA-SHA1",
        "auth-signature_type": "header", "auth-rsa_private_key": pem,
        "auth-acknowledge_insecure": "on",
    }  # fmt: skip
    response = client_for(actors.member).post("/o/org-a/services/new/", data)
    assert response.status_code == 400
    page = response.content.decode()
    assert 'name="auth-rsa_private_key"' in page  # the field is there, empty
    assert PEM_BODY not in page
    assert not Service.objects.exists()
