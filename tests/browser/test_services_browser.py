"""The seed's two examples in a real browser: Spotify (OAuth2, from the catalog template) and
Airtable (token, by hand), then another member of the org sees both listed."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLIENT_SECRET = "browser-client-secret-77"


def sign_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r".*/o/[\w-]+/$"))


def sign_out(page: Any) -> None:
    page.click("header button:has-text('Sign out')")
    page.wait_for_load_state()
    page.context.clear_cookies()


def test_spotify_from_template_and_airtable_by_hand_are_listed_for_another_member(  # type: ignore[no-untyped-def]
    live_server, page, output_path, settings
) -> None:
    from services.models import Service
    from workspaces.models import Role
    from workspaces.services import membership_create, organization_create

    settings.TRAYSVC_PUBLIC_URL = live_server.url
    builder = make_user("builder@seed.example")
    colleague = make_user("colleague@seed.example")
    org = organization_create(name="Seed Co", slug="seed-co", owner=builder)
    membership_create(organization=org, user=colleague, role=Role.MEMBER, actor=builder)
    base = live_server.url

    sign_in(page, base, "builder@seed.example")
    page.click("nav >> text=Services")
    page.wait_for_url(f"{base}/o/seed-co/services/")
    page.click("text=New from a template")
    page.click("[aria-label='Use the Spotify template']")
    page.wait_for_url(re.compile(r".*/services/new/\?template=spotify$"))
    assert page.input_value("input[name=base_url]") == "https://api.spotify.com/v1"
    assert (
        page.input_value("input[name=auth-token_url]") == "https://accounts.spotify.com/api/token"
    )
    assert "Created in your personal workspace" in page.inner_text("#workspace-notice")
    page.fill("input[name=auth-client_id]", "spotify-client-id")
    page.fill("input[name=auth-client_secret]", CLIENT_SECRET)
    page.screenshot(path=f"{output_path}/spotify-template-form.png", full_page=True)
    page.click("button:has-text('Create service')")
    page.wait_for_selector("text=Service “Spotify” created in your personal workspace.")
    assert page.inner_text("#oauth-redirect-uri") == f"{live_server.url}/oauth2/callback"
    assert CLIENT_SECRET not in page.content()
    page.screenshot(path=f"{output_path}/spotify-service-page.png", full_page=True)

    page.goto(f"{base}/o/seed-co/services/new/")
    page.fill("input[name=name]", "Airtable")
    page.fill("input[name=base_url]", "https://api.airtable.com/v0")
    page.select_option("select[name=auth_method]", "token")
    # htmx swaps in the token fields; without JavaScript the "Show the fields" button does it.
    page.wait_for_selector("#auth-method-fields[data-method=token] select[name=auth-placement]")
    page.select_option("select[name=auth-placement]", "bearer")
    page.fill("input[name=test_path]", "/meta/whoami")
    page.select_option("select[name=pagination_kind]", "cursor")
    page.fill("input[name=pagination_cursor_path]", "offset")
    page.fill("input[name=pagination_cursor_param]", "offset")
    page.click("button:has-text('Create service')")
    page.wait_for_selector("text=Service “Airtable” created in your personal workspace.")

    sign_out(page)
    sign_in(page, base, "colleague@seed.example")
    page.goto(f"{base}/o/seed-co/services/")
    rows = page.locator("#services tbody tr")
    assert rows.count() == 2
    listed = page.inner_text("#services")
    assert "Airtable" in listed and "Spotify" in listed
    assert "builder@seed.example" in listed
    assert "(you can edit)" not in listed  # the colleague is a plain member: read and use only
    page.screenshot(path=f"{output_path}/services-listed-for-colleague.png", full_page=True)

    spotify = Service.objects.get(name="Spotify")
    assert spotify.source_detail == "spotify"
    assert spotify.auth_params["authorize_url"] == "https://accounts.spotify.com/authorize"
    assert spotify.get_secret_params() == {"client_secret": CLIENT_SECRET}
    airtable = Service.objects.get(name="Airtable")
    assert airtable.auth_params == {"placement": "bearer"}
    assert airtable.pagination["kind"] == "cursor"
    assert {s.owner_workspace.owner.user.email for s in (spotify, airtable)} == {
        "builder@seed.example"}  # fmt: skip
