"""A person signs up, verifies their email, creates an org, invites a member and switches orgs."""

from __future__ import annotations

import re

import pytest
from django.core import mail

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _last_link(pattern: str) -> str:
    for message in reversed(mail.outbox):
        match = re.search(pattern, message.body)
        if match:
            return match.group(0)
    raise AssertionError(f"no email with {pattern!r}: {[m.subject for m in mail.outbox]}")


def test_signup_verify_create_org_invite_and_switch(
    live_server, page, output_path, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http"
    base = live_server.url
    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=email]", "ada@example.com")
    page.fill("input[name=password1]", "analytical engine 1843")
    page.fill("input[name=password2]", "analytical engine 1843")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r".*/accounts/confirm-email/"))

    confirm = _last_link(r"http://[^\s]+/accounts/confirm-email/[^\s]+")
    page.goto(confirm)
    page.click("main button[type=submit]")
    # Signed in, in the organization created for the new account.
    page.wait_for_url(re.compile(r".*/o/[\w-]+/$"))
    assert "ada's organization" in page.content() or "ada&#x27;s organization" in page.content()

    page.goto(f"{base}/orgs/new/")
    page.fill("input[name=name]", "Analytical Co")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/o/analytical-co/")
    assert page.locator("h1").inner_text() == "Analytical Co"

    page.goto(f"{base}/o/analytical-co/members/")
    page.fill("input[name=email]", "charles@example.com")
    page.select_option("form[action$='/members/invite/'] select[name=role]", "admin")
    page.click("text=Send invitation")
    page.wait_for_selector("text=Invitation sent to charles@example.com.")
    assert "charles@example.com" in page.locator("ul").last.inner_text()
    invite = _last_link(r"http://[^\s]+/invitations/[^\s/]+/")

    # Switch back to the first organization with the switcher.
    page.click("#org-switcher summary")
    page.click("#org-switcher >> text=ada's organization")
    page.wait_for_url(re.compile(r".*/o/adas-organization/$"))
    assert "ada's organization" in page.locator("h1").inner_text()
    page.click("#org-switcher summary")
    page.click("#org-switcher >> text=Analytical Co")
    page.wait_for_url(f"{base}/o/analytical-co/")
    page.screenshot(path=f"{output_path}/foundation.png", full_page=True)

    # The invited address has no account: it signs up from the invitation, then accepts.
    page.click("header button:has-text('Sign out')")
    page.goto(invite)
    page.click("main a:has-text('Sign up')")
    page.fill("input[name=email]", "charles@example.com")
    page.fill("input[name=password1]", "difference engine 1822")
    page.fill("input[name=password2]", "difference engine 1822")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r".*/accounts/confirm-email/"))
    page.goto(_last_link(r"http://[^\s]+/accounts/confirm-email/[^\s]+"))
    page.click("main button[type=submit]")
    page.goto(invite)
    page.click("main button:has-text('Accept invitation')")
    page.wait_for_url(f"{base}/o/analytical-co/")
    page.wait_for_selector("text=Welcome to Analytical Co.")
    from workspaces.models import Membership

    joined = Membership.objects.get(user__email="charles@example.com")
    assert joined.organization.slug == "analytical-co" and joined.role == "admin"
