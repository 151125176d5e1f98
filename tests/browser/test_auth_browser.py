"""Connect the sandbox service through the consent page, refresh, revoke, Test, Reconnect.

The sandbox provider lives on the app's own origin and shares its session (as under
`make run`), so one browser is one signed-in person at both: the sandbox end user, signed in
on the login page the provider sends to, is also the traysvc member who connects. The app
calls its provider over HTTP on live_server (TRAYSVC_PUBLIC_URL = live_server.url), which the
SSRF guard exempts for /sandbox/ URLs only — exactly like `make run`.
"""

from __future__ import annotations

import base64
import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ORG_SLUG = "sandbox-co"
SCOPES = ["read", "profile"]


@pytest.fixture
def sandbox(live_server, settings, tmp_path):  # type: ignore[no-untyped-def]
    """The provider's clients on live_server, an org owned by the sandbox user, the service."""
    if not settings.TRAYSVC_SANDBOX:
        pytest.fail("the browser test needs the sandbox: run pytest with TRAYSVC_SANDBOX=1")
    from django.contrib.auth import get_user_model

    from sandbox.clients import ensure_sandbox_apps
    from services.services import service_create
    from workspaces.models import Membership
    from workspaces.services import organization_create

    settings.VAR_DIR = tmp_path / "var"
    settings.TRAYSVC_PUBLIC_URL = live_server.url
    settings.SANDBOX_ISSUER = f"{live_server.url}/sandbox/o"
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_ISS_ENDPOINT": settings.SANDBOX_ISSUER,
    }
    settings.CELERY_TASK_ALWAYS_EAGER = True
    apps = ensure_sandbox_apps()
    user = get_user_model().objects.get(email=apps.user_email)
    org = organization_create(name="Sandbox Co", slug=ORG_SLUG, owner=user)
    membership = Membership.objects.get(user=user, organization=org)
    service = service_create(
        membership=membership,
        name="Sandbox",
        base_url=apps.api_base,
        auth_method="oauth2",
        auth_params={
            "client_id": apps.client_id,
            "client_secret": apps.client_secret,
            "authorize_url": apps.authorize_url,
            "token_url": apps.token_url,
            "revoke_url": apps.revoke_url,
            "scopes": SCOPES,
            "pkce": True,
            "token_endpoint_auth": "basic",
        },
        test_request={"method": "GET", "path": "/me"},
    )
    yield apps, service
    from traysvc.egress import close_clients

    close_clients()


def _status(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator("#auth-status .badge").get_attribute("data-status")


def _consent(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector("#sandbox-consent")
    assert "Allow traysvc sandbox client" in page.locator("#sandbox-consent h2").inner_text()
    page.click("#consent-allow")


def test_connect_refresh_revoke_test_and_reconnect(page, sandbox, live_server, output_path):  # type: ignore[no-untyped-def]
    from services.models import Authentication

    apps, service = sandbox
    base = live_server.url
    shots = 0

    def shot(name: str) -> None:
        nonlocal shots
        shots += 1
        page.screenshot(path=f"{output_path}/auth-{shots:02d}-{name}.png", full_page=True)

    # Not signed in: the authentications page sends to the login page; sign in as the sandbox
    # end user (the same login page the provider's consent page sends to).
    page.goto(f"{base}/o/{ORG_SLUG}/authentications/new/?service={service.public_id}")
    page.wait_for_url(re.compile(r".*/accounts/login/"))
    page.fill("input[name=login]", apps.user_email)
    page.fill("input[name=password]", apps.user_password)
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(rf".*/o/{ORG_SLUG}/authentications/new/"))

    # Step 1: the service is chosen; name it. Step 2: Connect sends to the provider.
    assert page.locator("select[name=target]").input_value() == f"service:{service.public_id}"
    page.fill("input[name=name]", "My sandbox")
    page.click("button[name=step]")
    page.wait_for_selector("#connect")
    shot("connect")
    page.click("#connect")
    page.wait_for_url(re.compile(r".*/sandbox/o/authorize/"))
    shot("consent")
    _consent(page)

    # Back from the callback on the authentication's page: active.
    page.wait_for_url(re.compile(rf".*/o/{ORG_SLUG}/authentications/[0-9a-f-]{{36}}/$"))
    assert "Connected" in page.locator(".messages").inner_text()
    assert _status(page) == "active"
    auth_id = page.locator("#auth-id").inner_text()
    detail_url = page.url
    auth = Authentication.objects.get(public_id=auth_id)
    assert auth.service_id == service.pk
    assert sorted(auth.scopes) == sorted(SCOPES)
    secrets = auth.get_secrets()
    assert secrets["access_token"] not in page.content()
    assert secrets["refresh_token"] not in page.content()
    shot("active")

    # Refresh now: a new access token, the refresh token rotated, still active.
    assert page.locator("#auth-last-refreshed").inner_text() == "never"
    page.click("#refresh-now")
    page.wait_for_selector("text=Refreshed")
    assert _status(page) == "active"
    assert page.locator("#auth-last-refreshed").inner_text() != "never"
    auth.refresh_from_db()
    refreshed = auth.get_secrets()
    assert refreshed["access_token"] != secrets["access_token"]
    assert refreshed["refresh_token"] != secrets["refresh_token"]
    shot("refreshed")

    # Revoke the grant at the provider, out of band (RFC 7009, client authenticated).
    basic = base64.b64encode(f"{apps.client_id}:{apps.client_secret}".encode()).decode()
    revoked = page.request.post(
        apps.revoke_url,
        form={"token": refreshed["refresh_token"], "token_type_hint": "refresh_token"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert revoked.status == 200, revoked.text()

    # Test: the provider refuses the token and the refresh: needs reconnecting, in words.
    page.click("#test")
    page.wait_for_selector("text=Test failed")
    assert _status(page) == "needs_reauth"
    assert page.locator("#last-error").is_visible()
    assert page.locator("form button#reconnect").is_visible()
    shot("needs-reauth")

    # Reconnect: consent again; the same authentication (same id, same page) is active again.
    page.click("#reconnect")
    page.wait_for_url(re.compile(r".*/sandbox/o/authorize/"))
    _consent(page)
    page.wait_for_url(detail_url)
    assert "Reconnected" in page.locator(".messages").inner_text()
    assert _status(page) == "active"
    assert page.locator("#auth-id").inner_text() == auth_id
    assert Authentication.objects.filter(service=service).count() == 1
    audit = page.locator("#audit-trail").inner_text()
    assert "authentication.create" in audit
    assert "authentication.reconnect" in audit
    shot("reconnected")
