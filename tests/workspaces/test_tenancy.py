"""Cross-organization access is refused for every URL pattern, found by walking the URL conf."""

from __future__ import annotations

import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db


def _walk(patterns, prefix=""):  # type: ignore[no-untyped-def]
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def org_patterns() -> list[str]:
    routes = [route for route, _ in _walk(get_resolver().url_patterns)]
    return sorted({r for r in routes if r.startswith("o/<slug:org>/")})


def _fill(route: str, org_slug: str, objects: dict[str, str]) -> str:
    import re

    def repl(match: re.Match[str]) -> str:
        conv, name = match.group(1), match.group(2)
        if name == "org":
            return org_slug
        if conv == "uuid":
            return objects.get(name, str(uuid.uuid4()))
        return objects.get(name, "x")

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", repl, route)


def objects_of_org(org) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Real ids of objects in `org`, by the URL kwarg names that take them."""
    from django.apps import apps

    from workspaces.models import Invitation, Membership, Workspace

    found: dict[str, str] = {}
    m = Membership.objects.filter(organization=org).first()
    if m:
        found["membership_id"] = str(m.public_id)
    w = Workspace.objects.filter(organization=org).first()
    if w:
        found["workspace_id"] = str(w.public_id)
    inv = Invitation.objects.filter(organization=org).first()
    if inv:
        found["invitation_id"] = str(inv.public_id)
    # Other apps' objects, when those apps define them.
    for label, model, kwarg in [
        ("services", "Service", "service_id"),
        ("services", "Authentication", "authentication_id"),
        ("httpclient", "CallLog", "call_id"),
    ]:
        try:
            Model = apps.get_model(label, model)
        except LookupError:
            continue
        obj = (
            Model.objects.filter(organization=org).first()
            if hasattr(Model, "organization")
            else None
        )
        if obj is not None:
            found[kwarg] = str(obj.public_id)
    return found


def test_the_walker_finds_the_org_pages() -> None:
    routes = org_patterns()
    assert "o/<slug:org>/members/" in routes
    assert len(routes) >= 10


def test_outsider_gets_404_for_every_org_url(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    from workspaces.services import invitation_create

    invitation_create(
        organization=actors.org_a, email="x@a.example", role="member", invited_by=actors.owner_m
    )
    objects = objects_of_org(actors.org_a)
    outsider = client_for(actors.outsider)
    checked = 0
    for route in org_patterns():
        url = _fill(route, actors.org_a.slug, objects)
        get = outsider.get(url)
        assert get.status_code in (404, 405), (url, get.status_code)
        post = outsider.post(url, {"name": "x", "role": "owner", "email": "e@x.example"})
        assert post.status_code == 404, (url, post.status_code)
        checked += 1
    assert checked == len(org_patterns())
    # Nothing changed in org A.
    from workspaces.models import Invitation, Membership

    assert Membership.objects.filter(organization=actors.org_a).count() == 3
    assert Invitation.objects.filter(organization=actors.org_a).count() == 1


def _populate_org_b(actors) -> None:  # type: ignore[no-untyped-def]
    """One object of every kind a URL takes, in org B, so the walk uses real foreign ids."""
    from httpclient.models import CallLog
    from services.authentications import authentication_create
    from services.services import service_create
    from workspaces.services import invitation_create

    service = service_create(
        membership=actors.outsider_m, name="B API", base_url="https://b.example",
        auth_method="token", auth_params={"placement": "bearer"},
    )  # fmt: skip
    authentication_create(
        membership=actors.outsider_m, workspace=actors.outsider_m.owned_workspace,
        service=service, name="B key", values={"token": "b-secret-token"},
    )  # fmt: skip
    CallLog.objects.create(organization=actors.org_b, service=service, method="GET", url="x")
    invitation_create(organization=actors.org_b, email="y@b.example", role="member",
                      invited_by=actors.outsider_m)  # fmt: skip


def test_member_of_a_cannot_reach_org_b_objects_through_org_a_urls(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    """Org A's URL with org B's real object ids: the object is still not found, GET or POST."""
    import re

    _populate_org_b(actors)
    objects_b = objects_of_org(actors.org_b)
    kwargs = {name for route in org_patterns() for name in re.findall(r"<uuid:(\w+)>", route)}
    assert kwargs <= set(objects_b), f"no org-B object for {kwargs - set(objects_b)}"
    owner = client_for(actors.owner)
    for route in org_patterns():
        if "_id>" not in route:
            continue
        url = _fill(route, actors.org_a.slug, objects_b)
        assert owner.get(url).status_code in (404, 405), url
        assert owner.post(url, {"role": "member"}).status_code == 404, url


def test_anonymous_is_sent_to_login(actors, client) -> None:  # type: ignore[no-untyped-def]
    response = client.get(f"/o/{actors.org_a.slug}/members/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_unknown_org_is_404_not_500(actors, client_for) -> None:  # type: ignore[no-untyped-def]
    assert client_for(actors.owner).get("/o/no-such-org/members/").status_code == 404
