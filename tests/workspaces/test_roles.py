"""Role matrix: owner/admin/member on every org page and admin action."""

from __future__ import annotations

import pytest

from workspaces.models import Invitation, Membership, Role

pytestmark = pytest.mark.django_db

PAGES = ["", "members/", "workspaces/", "notifications/"]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("who", ["owner", "admin", "member"])
def test_every_member_can_read_org_pages(actors, client_for, who, page) -> None:  # type: ignore[no-untyped-def]
    response = client_for(getattr(actors, who)).get(f"/o/org-a/{page}")
    assert response.status_code == 200
    assert b"Org A" in response.content
    assert b"Org B" not in response.content


@pytest.mark.parametrize(("who", "allowed"), [("owner", True), ("admin", True), ("member", False)])
def test_invite_needs_admin(actors, client_for, who, allowed, mailoutbox) -> None:  # type: ignore[no-untyped-def]
    response = client_for(getattr(actors, who)).post(
        "/o/org-a/members/invite/", {"email": "new@a.example", "role": "member"}
    )
    assert response.status_code == (302 if allowed else 403)
    assert Invitation.objects.filter(email="new@a.example").exists() is allowed
    assert len(mailoutbox) == (1 if allowed else 0)


@pytest.mark.parametrize(("who", "allowed"), [("owner", True), ("admin", True), ("member", False)])
def test_role_change_needs_admin(actors, client_for, who, allowed) -> None:  # type: ignore[no-untyped-def]
    target = actors.member_m if who != "member" else actors.admin_m
    response = client_for(getattr(actors, who)).post(
        f"/o/org-a/members/{target.public_id}/role/",
        {"role": "admin" if who != "member" else "member"},
    )
    target.refresh_from_db()
    if allowed:
        assert response.status_code == 302
        assert target.role == Role.ADMIN
    else:
        assert response.status_code == 403
        assert target.role == Role.ADMIN  # unchanged: it was admin already


def test_admin_cannot_make_an_owner(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    response = client_for(actors.admin).post(
        f"/o/org-a/members/{actors.member_m.public_id}/role/", {"role": "owner"}, follow=True
    )
    actors.member_m.refresh_from_db()
    assert actors.member_m.role == Role.MEMBER
    assert "Only an owner can make someone an owner" in response.content.decode()


def test_last_owner_cannot_be_demoted_or_removed(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    c = client_for(actors.owner)
    r = c.post(
        f"/o/org-a/members/{actors.owner_m.public_id}/role/", {"role": "member"}, follow=True
    )
    assert "at least one owner" in r.content.decode()
    r = c.post(f"/o/org-a/members/{actors.owner_m.public_id}/remove/", follow=True)
    assert "at least one owner" in r.content.decode()
    actors.owner_m.refresh_from_db()
    assert actors.owner_m.role == Role.OWNER


@pytest.mark.parametrize(("who", "allowed"), [("owner", True), ("admin", True), ("member", False)])
def test_member_removal_needs_admin(actors, client_for, who, allowed) -> None:  # type: ignore[no-untyped-def]
    victim = make_extra_member(actors)
    response = client_for(getattr(actors, who)).post(f"/o/org-a/members/{victim.public_id}/remove/")
    assert response.status_code == (302 if allowed else 403)
    assert Membership.objects.filter(pk=victim.pk).exists() is not allowed


def make_extra_member(actors):  # type: ignore[no-untyped-def]
    from tests.conftest import make_user  # noqa: I001
    from workspaces.services import membership_create

    user = make_user("extra@a.example")
    return membership_create(
        organization=actors.org_a, user=user, role=Role.MEMBER, actor=actors.owner
    )


@pytest.mark.parametrize(("who", "allowed"), [("owner", True), ("admin", True), ("member", False)])
def test_service_owner_designation_needs_admin(actors, client_for, who, allowed) -> None:  # type: ignore[no-untyped-def]
    response = client_for(getattr(actors, who)).post(
        "/o/org-a/members/service-owner/", {"membership": str(actors.member_m.public_id)}
    )
    actors.org_a.refresh_from_db()
    assert response.status_code == (302 if allowed else 403)
    assert (actors.org_a.service_owner_id == actors.member_m.pk) is allowed


def test_members_page_explains_the_service_owner(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    body = client_for(actors.member).get("/o/org-a/members/").content.decode()
    assert "keep working" in body and "when people leave" in body


@pytest.mark.parametrize(("who", "allowed"), [("owner", True), ("admin", True), ("member", False)])
def test_shared_workspace_creation_needs_admin(actors, client_for, who, allowed) -> None:  # type: ignore[no-untyped-def]
    from workspaces.models import Workspace

    response = client_for(getattr(actors, who)).post("/o/org-a/workspaces/", {"name": "Team"})
    assert response.status_code == (302 if allowed else 403)
    assert Workspace.objects.filter(organization=actors.org_a, name="Team").exists() is allowed


def test_member_sees_only_own_personal_workspace(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    other = actors.owner_m.owned_workspace
    response = client_for(actors.member).get(f"/o/org-a/workspaces/{other.public_id}/")
    assert response.status_code == 404
    mine = actors.member_m.owned_workspace
    assert (
        client_for(actors.member).get(f"/o/org-a/workspaces/{mine.public_id}/").status_code == 200
    )


def test_duplicate_org_slug_is_a_form_error(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    from workspaces.models import Organization

    response = client_for(actors.member).post("/orgs/new/", {"name": "Again", "slug": "org-a"})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Organization.objects.filter(name="Again").count() == 0


def test_a_webhook_the_guard_would_refuse_is_not_saved(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    response = client_for(actors.owner).post(
        "/o/org-a/members/webhook/", {"webhook_url": "https://127.0.0.1/hook"}, follow=True
    )
    actors.org_a.refresh_from_db()
    assert actors.org_a.webhook_url == ""
    body = response.content.decode()
    assert "traysvc cannot deliver to this webhook URL" in body and "loopback" in body


def test_a_webhook_on_a_public_address_is_saved(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    client_for(actors.owner).post(
        "/o/org-a/members/webhook/", {"webhook_url": "https://93.184.215.14/hook"}
    )
    actors.org_a.refresh_from_db()
    assert actors.org_a.webhook_url == "https://93.184.215.14/hook"
