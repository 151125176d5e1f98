"""The sandbox is a real OAuth2 authorization server: codes, PKCE, rotation, revocation."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_authorization_code_with_pkce_issues_tokens(provider) -> None:  # type: ignore[no-untyped-def]
    code, verifier = provider.code()
    token = provider.exchange(code, verifier)
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 300
    assert sorted(token["scope"].split()) == ["profile", "read"]
    assert token["refresh_token"]
    me = provider.api("GET", "me", token["access_token"])
    assert me.status_code == 200
    assert me.json()["email"] == "sandbox-user@example.com"
    assert me.json()["grant"] == "authorization_code"


def test_authorization_response_carries_the_issuer(provider, settings) -> None:  # type: ignore[no-untyped-def]
    query = provider.consent(provider.authorize_params())
    assert query["iss"] == [settings.TRAYSVC_PUBLIC_URL + "/sandbox/o"]
    assert provider.apps.issuer == settings.TRAYSVC_PUBLIC_URL + "/sandbox/o"


def test_code_is_single_use(provider) -> None:  # type: ignore[no-untyped-def]
    code, verifier = provider.code()
    provider.exchange(code, verifier)
    again = provider.token(
        {"grant_type": "authorization_code", "code": code,
         "redirect_uri": provider.apps.redirect_uri, "code_verifier": verifier}
    )  # fmt: skip
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_wrong_code_verifier_is_refused(provider) -> None:  # type: ignore[no-untyped-def]
    code, _ = provider.code()
    response = provider.token(
        {"grant_type": "authorization_code", "code": code,
         "redirect_uri": provider.apps.redirect_uri, "code_verifier": "x" * 50}
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_pkce_is_required(provider) -> None:  # type: ignore[no-untyped-def]
    params = provider.authorize_params()
    del params["code_challenge"], params["code_challenge_method"]
    response = provider.browser.get("/sandbox/o/authorize/", params)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["error"] == ["invalid_request"]
    assert query["error_description"] == ["Code challenge required."]


def test_plain_pkce_is_refused(provider) -> None:  # type: ignore[no-untyped-def]
    params = provider.authorize_params(code_challenge="a" * 50, code_challenge_method="plain")
    query = provider.consent(params)
    assert query["error"] == ["invalid_request"]
    assert "S256" in query["error_description"][0]
    assert "code" not in query


def test_denying_consent_redirects_with_access_denied(provider) -> None:  # type: ignore[no-untyped-def]
    params = provider.authorize_params()
    query = provider.consent(params, allow=False)
    assert query["error"] == ["access_denied"]
    assert query["state"] == [params["state"]]


def test_unregistered_redirect_uri_is_not_followed(provider) -> None:  # type: ignore[no-untyped-def]
    params = provider.authorize_params(redirect_uri="https://attacker.example/callback")
    response = provider.browser.get("/sandbox/o/authorize/", params)
    assert response.status_code == 400
    assert b"Authorization error" in response.content
    assert "Location" not in response


def test_consent_page_fits_the_site_and_has_no_inline_script(provider) -> None:  # type: ignore[no-untyped-def]
    response = provider.browser.get("/sandbox/o/authorize/", provider.authorize_params())
    html = response.content.decode()
    assert response.templates[0].name == "oauth2_provider/authorize.html"
    assert "base.html" in [t.name for t in response.templates]
    assert "Allow traysvc sandbox client to access your sandbox account?" in html
    assert "See your email address" in html and "Read your sandbox items" in html
    assert "<script>" not in html and "style=" not in html
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_authorize_needs_a_signed_in_user(provider) -> None:  # type: ignore[no-untyped-def]
    response = Client().get("/sandbox/o/authorize/", provider.authorize_params())
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/sandbox/o/authorize/")


def test_sandbox_user_signs_in_with_the_printed_password(sandbox_apps) -> None:  # type: ignore[no-untyped-def]
    browser = Client()
    assert browser.login(username=sandbox_apps.user_email, password=sandbox_apps.user_password)
    assert not Client().login(username=sandbox_apps.user_email, password="wrong")


def test_refresh_rotates_and_the_old_refresh_token_is_refused(provider) -> None:  # type: ignore[no-untyped-def]
    first = provider.grant()
    second = provider.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert second.status_code == 200, second.content
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["access_token"] != first["access_token"]

    replay = provider.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"

    assert provider.api("GET", "me", first["access_token"]).status_code == 401
    assert provider.api("GET", "me", rotated["access_token"]).status_code == 200
    third = provider.token(
        {"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]}
    )
    assert third.status_code == 200


def test_refresh_needs_the_clients_secret(provider) -> None:  # type: ignore[no-untyped-def]
    token = provider.grant()
    response = provider.token(
        {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        client_secret="not-the-secret",
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_access_token_lifetime_follows_the_setting(provider, settings) -> None:  # type: ignore[no-untyped-def]
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "ACCESS_TOKEN_EXPIRE_SECONDS": 7,
        "ALWAYS_RELOAD_OAUTHLIB_CORE": True,  # the token view caches its server otherwise
    }
    assert provider.grant()["expires_in"] == 7


def test_token_lifetimes_come_from_the_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import traysvc.settings as s; p = s.OAUTH2_PROVIDER; "
        "print(p['ACCESS_TOKEN_EXPIRE_SECONDS'], p['REFRESH_TOKEN_EXPIRE_SECONDS'])"
    )
    env = {
        **os.environ,
        "TRAYSVC_TESTING": "1",
        "TRAYSVC_VAR_DIR": str(tmp_path),
        "SANDBOX_ACCESS_TOKEN_SECONDS": "7",
        "SANDBOX_REFRESH_TOKEN_SECONDS": "60",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=settings_dir(), capture_output=True,
        text=True, timeout=60, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["7", "60"]
    defaults = subprocess.run(
        [sys.executable, "-c", code],
        env={k: v for k, v in env.items() if not k.startswith("SANDBOX_")},
        cwd=settings_dir(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert defaults.stdout.split() == ["300", "86400"]


def settings_dir() -> str:
    from django.conf import settings

    return str(settings.BASE_DIR)


def test_expired_access_token_answers_401(provider) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    token = provider.grant()["access_token"]
    AccessToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert provider.api("GET", "me", token).status_code == 401


def test_client_credentials_issue_a_token_without_a_user(provider) -> None:  # type: ignore[no-untyped-def]
    token = provider.client_credentials()
    assert "refresh_token" not in token
    me = provider.api("GET", "me", token["access_token"]).json()
    assert me["email"] is None
    assert me["client_id"] == "traysvc-sandbox-cc"
    assert me["grant"] == "client_credentials"


def test_authorization_code_client_cannot_use_client_credentials(provider) -> None:  # type: ignore[no-untyped-def]
    response = provider.token({"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_revoked_access_token_answers_401(provider) -> None:  # type: ignore[no-untyped-def]
    token = provider.grant()
    assert provider.api("GET", "me", token["access_token"]).status_code == 200
    revoke = provider.revoke(token["access_token"], "access_token")
    assert revoke.status_code == 200
    me = provider.api("GET", "me", token["access_token"])
    assert me.status_code == 401
    assert me["WWW-Authenticate"].startswith("Bearer")


def test_revoked_refresh_token_gives_invalid_grant(provider) -> None:  # type: ignore[no-untyped-def]
    token = provider.grant()
    revoke = provider.revoke(token["refresh_token"], "refresh_token")
    assert revoke.status_code == 200
    response = provider.token(
        {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    # Revoking the refresh token ends the grant: its access token goes with it.
    assert provider.api("GET", "me", token["access_token"]).status_code == 401


def test_metadata_document_describes_the_provider(provider, settings) -> None:  # type: ignore[no-untyped-def]
    response = Client().get("/sandbox/o/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == settings.TRAYSVC_PUBLIC_URL + "/sandbox/o"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["token_endpoint"].endswith("/sandbox/o/token/")
