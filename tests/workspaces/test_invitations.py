"""Invitation flow end to end: invite, email, sign up with the invited address, accept."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from workspaces.models import Invitation, Membership, Organization, Workspace
from workspaces.services import (
    INVITATION_EXPIRED,
    INVITATION_INVALID,
    INVITATION_USED,
    INVITATION_WRONG_EMAIL,
)

pytestmark = pytest.mark.django_db


def _link(mailoutbox) -> str:  # type: ignore[no-untyped-def]
    match = re.search(r"http://testserver(/invitations/[^/\s]+/)", mailoutbox[-1].body)
    assert match, mailoutbox[-1].body
    return match.group(1)


def _verify_link(mailoutbox) -> str:  # type: ignore[no-untyped-def]
    for mail in reversed(mailoutbox):
        match = re.search(r"http://testserver(/accounts/confirm-email/[^\s]+)", mail.body)
        if match:
            return match.group(1)
    raise AssertionError("no verification email")


def test_invited_address_without_account_signs_up_then_accepts(
    actors, client, client_for, mailoutbox
) -> None:  # type: ignore[no-untyped-def]
    client_for(actors.admin).post(
        "/o/org-a/members/invite/", {"email": "New.Person@Example.com", "role": "member"}
    )
    invite_path = _link(mailoutbox)
    page = client.get(invite_path)
    assert page.status_code == 200
    assert "new.person@example.com" in page.content.decode()
    assert "sign up" in page.content.decode().lower()

    signup = client.post(
        f"/accounts/signup/?next={invite_path}",
        {
            "email": "new.person@example.com",
            "password1": "a long pass phrase 9",
            "password2": "a long pass phrase 9",
        },
    )
    assert signup.status_code == 302
    confirm = _verify_link(mailoutbox)
    client.post(confirm)
    # An invited signup does not get an extra organization of its own.
    assert not Organization.objects.filter(
        memberships__user__email="new.person@example.com"
    ).exists()

    accepted = client.post(invite_path)
    assert accepted.status_code == 302
    m = Membership.objects.get(user__email="new.person@example.com")
    assert m.organization == actors.org_a and m.role == "member"
    assert Workspace.objects.filter(owner=m, kind="personal").count() == 1
    # Used once.
    again = client.post(invite_path)
    assert again.status_code == 404
    assert INVITATION_USED in again.content.decode()


def test_wrong_account_cannot_accept(actors, client_for, mailoutbox) -> None:  # type: ignore[no-untyped-def]
    client_for(actors.owner).post(
        "/o/org-a/members/invite/", {"email": "someone@x.example", "role": "admin"}
    )
    response = client_for(actors.outsider).post(_link(mailoutbox))
    assert response.status_code == 400
    assert INVITATION_WRONG_EMAIL.format(email="someone@x.example") in response.content.decode()
    assert not Membership.objects.filter(organization=actors.org_a, user=actors.outsider).exists()


def test_expired_invitation_is_refused(actors, client_for, mailoutbox) -> None:  # type: ignore[no-untyped-def]
    client_for(actors.owner).post(
        "/o/org-a/members/invite/", {"email": "late@x.example", "role": "member"}
    )
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client_for(actors.outsider).get(_link(mailoutbox))
    assert response.status_code == 404
    assert INVITATION_EXPIRED in response.content.decode()


def test_forged_token_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/invitations/not-a-real-token/")
    assert response.status_code == 404
    assert INVITATION_INVALID in response.content.decode()


def test_inviting_a_member_again_is_a_clear_error(actors, client_for, mailoutbox) -> None:  # type: ignore[no-untyped-def]
    response = client_for(actors.owner).post(
        "/o/org-a/members/invite/", {"email": "member@a.example", "role": "member"}, follow=True
    )
    assert "already a member" in response.content.decode()
    assert mailoutbox == []


def test_invalid_email_is_a_clear_error(actors, client_for, mailoutbox) -> None:  # type: ignore[no-untyped-def]
    response = client_for(actors.owner).post(
        "/o/org-a/members/invite/", {"email": "not an email", "role": "member"}, follow=True
    )
    assert response.status_code == 200
    assert "Enter a valid email address" in response.content.decode()
    assert Invitation.objects.count() == 0


def test_revoked_invitation_cannot_be_used(actors, client_for, mailoutbox) -> None:  # type: ignore[no-untyped-def]
    c = client_for(actors.owner)
    c.post("/o/org-a/members/invite/", {"email": "r@x.example", "role": "member"})
    inv = Invitation.objects.get()
    assert c.post(f"/o/org-a/invitations/{inv.public_id}/revoke/").status_code == 302
    assert client_for(actors.outsider).get(_link(mailoutbox)).status_code == 404
