"""Shared actors across two organizations, and the browser launch settings."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

os.environ.setdefault("TRAYSVC_TESTING", "1")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PASSWORD = "correct horse battery staple 42"


@dataclass
class Actors:
    org_a: object
    org_b: object
    owner: object
    admin: object
    member: object
    outsider: object
    owner_m: object
    admin_m: object
    member_m: object
    outsider_m: object


def make_user(email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    from workspaces.management.commands.createorg import ensure_user

    return ensure_user(email, password)


@pytest.fixture(autouse=True)
def _run_var_dir(settings, tmp_path_factory):  # type: ignore[no-untyped-def]
    """This run's own var/ (refresh lock files, dev secrets written at call time): test runs
    side by side on one machine share no lock file, whatever their authentication ids."""
    settings.VAR_DIR = tmp_path_factory.getbasetemp() / "var"


@pytest.fixture
def actors(db) -> Actors:  # type: ignore[no-untyped-def]
    """owner, admin, member of org A; an outsider who owns org B."""
    from workspaces.models import Membership, Role
    from workspaces.services import membership_create, organization_create

    owner = make_user("owner@a.example")
    admin = make_user("admin@a.example")
    member = make_user("member@a.example")
    outsider = make_user("outsider@b.example")
    org_a = organization_create(name="Org A", slug="org-a", owner=owner)
    org_b = organization_create(name="Org B", slug="org-b", owner=outsider)
    membership_create(organization=org_a, user=admin, role=Role.ADMIN, actor=owner)
    membership_create(organization=org_a, user=member, role=Role.MEMBER, actor=owner)
    m = {
        u: Membership.objects.get(user=u, organization=o)
        for u, o in [(owner, org_a), (admin, org_a), (member, org_a), (outsider, org_b)]
    }
    return Actors(
        org_a, org_b, owner, admin, member, outsider, m[owner], m[admin], m[member], m[outsider]
    )


@pytest.fixture
def client_for(client):  # type: ignore[no-untyped-def]
    """client_for(user) -> a test client signed in as that user."""
    from django.test import Client

    def make(user):  # type: ignore[no-untyped-def]
        c = Client()
        c.force_login(user)
        return c

    return make


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):  # type: ignore[no-untyped-def]
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(autouse=True)
def _fresh_api_key_cache():  # type: ignore[no-untyped-def]
    """Each test sees the database, not a key authenticated by an earlier test."""
    from workspaces.services import api_key_cache_clear

    api_key_cache_clear()
    yield
    api_key_cache_clear()
