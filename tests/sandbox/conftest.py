"""The sandbox provider under test: its clients, and an OAuth client driven through the test client.

These tests need the sandbox mounted, which Django settings decide once at startup: run the
suite with TRAYSVC_SANDBOX=1 (as `make test` does).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

SANDBOX_OFF = "tests/sandbox need the sandbox mounted: run pytest with TRAYSVC_SANDBOX=1."


@pytest.fixture(autouse=True)
def _sandbox_on(settings, tmp_path):  # type: ignore[no-untyped-def]
    """Fail (not skip) without the sandbox; keep generated passwords out of the real var/."""
    if not settings.TRAYSVC_SANDBOX:
        pytest.fail(SANDBOX_OFF)
    settings.VAR_DIR = tmp_path / "var"


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge) as RFC 7636 builds them."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def basic(client_id: str, client_secret: str) -> str:
    raw = f"{client_id}:{client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@dataclass
class Provider:
    """Plays the OAuth client (traysvc) against the sandbox provider with Django's test client."""

    apps: Any
    browser: Client  # signed in as the sandbox end user
    machine: Client  # no session: token and API calls

    def authorize_params(self, **overrides: str) -> dict[str, str]:
        verifier, challenge = pkce_pair()
        self.verifier = verifier
        params = {
            "response_type": "code",
            "client_id": self.apps.client_id,
            "redirect_uri": self.apps.redirect_uri,
            "scope": "read profile",
            "state": secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return params

    def consent(self, params: dict[str, str], *, allow: bool = True) -> dict[str, list[str]]:
        """GET the consent page, POST the answer; return the callback's query parameters."""
        page = self.browser.get("/sandbox/o/authorize/", params)
        assert page.status_code == 200, page.content
        form = page.context["form"]
        data = {name: value for name, value in form.initial.items() if value is not None}
        if allow:
            data["allow"] = "Allow"
        answer = self.browser.post("/sandbox/o/authorize/", data)
        assert answer.status_code == 302, answer.content
        location = answer["Location"]
        assert location.startswith(self.apps.redirect_uri + "?"), location
        return parse_qs(urlsplit(location).query)

    def code(self, **overrides: str) -> tuple[str, str]:
        """(authorization code, PKCE verifier) from a consented authorization request."""
        params = self.authorize_params(**overrides)
        query = self.consent(params)
        assert query["state"] == [params["state"]]
        return query["code"][0], self.verifier

    def token(self, data: dict[str, str], *, client_id: str | None = None,
              client_secret: str | None = None) -> Any:  # fmt: skip
        return self.machine.post(
            "/sandbox/o/token/",
            data,
            HTTP_AUTHORIZATION=basic(
                client_id or self.apps.client_id, client_secret or self.apps.client_secret
            ),
        )

    def revoke(self, token: str, hint: str) -> Any:
        return self.machine.post(
            "/sandbox/o/revoke_token/",
            {"token": token, "token_type_hint": hint},
            HTTP_AUTHORIZATION=basic(self.apps.client_id, self.apps.client_secret),
        )

    def exchange(self, code: str, verifier: str) -> dict[str, Any]:
        response = self.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.apps.redirect_uri,
                "code_verifier": verifier,
            }
        )
        assert response.status_code == 200, response.content
        return response.json()

    def grant(self) -> dict[str, Any]:
        """A full authorization code + PKCE flow: the token response."""
        return self.exchange(*self.code())

    def client_credentials(self, scope: str = "read profile") -> dict[str, Any]:
        response = self.token(
            {"grant_type": "client_credentials", "scope": scope},
            client_id=self.apps.cc_client_id,
            client_secret=self.apps.cc_client_secret,
        )
        assert response.status_code == 200, response.content
        return response.json()

    def api(self, method: str, path: str, token: str | None, **kwargs: Any) -> Any:
        if token is not None:
            kwargs["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return getattr(self.machine, method.lower())(f"/sandbox/api/{path}", **kwargs)


@pytest.fixture
def sandbox_apps(db):  # type: ignore[no-untyped-def]
    from sandbox.clients import ensure_sandbox_apps

    return ensure_sandbox_apps()


@pytest.fixture
def provider(sandbox_apps) -> Provider:  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    browser = Client()
    browser.force_login(get_user_model().objects.get(email=sandbox_apps.user_email))
    return Provider(apps=sandbox_apps, browser=browser, machine=Client())
