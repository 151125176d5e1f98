"""Demo data for `make run`: an organization, a user whose login is printed, a few services.

`seed_demo()` is idempotent: running it again finds what it made before and changes nothing
the user may have edited (the demo password is kept in var/ and re-applied, so the printed
login always works). Apps above `services` add their own demo services through
`demo_seed_hooks` — the sandbox registers one that wires a "Sandbox" service to its OAuth2
provider — so this module never imports them and the dependency arrows keep pointing down.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from services.catalog import Connector, load_catalog
from services.models import Service, Source
from workspaces.management.commands.createorg import ensure_user
from workspaces.models import Membership, Organization, Role
from workspaces.services import membership_create, organization_create

logger = logging.getLogger(__name__)

DEMO_ORG_NAME = "Demo"
DEMO_ORG_SLUG = "demo"
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD_FILE = "demo_password"  # noqa: S105 (a file name in var/)
# Catalog connectors the demo org gets as services (those present in the catalog).
DEMO_CONNECTORS = ("spotify", "airtable", "github")

LOGIN_LINE = "Sign in at {public_url}/accounts/login/ as {email} / {password}"
CATALOG_OAUTH_NOTE = (
    "Demo copy of the {name} catalog entry: to connect, register an OAuth app with {name}, "
    "then edit this service and enter its client ID and secret."
)
CATALOG_KEY_NOTE = "Demo copy of the {name} catalog entry: connect it with your own {name} token."


@dataclass
class DemoSeed:
    """What seed_demo made or found; hooks add their services and lines to print."""

    organization: Organization
    user: AbstractBaseUser
    membership: Membership
    password: str
    services: list[Service] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


# Called inside seed_demo's transaction with the seed; registered by apps' ready().
DemoSeedHook = Callable[[DemoSeed], None]
demo_seed_hooks: list[DemoSeedHook] = []


def register_demo_seed_hook(hook: DemoSeedHook) -> None:
    """Add a hook once (ready() may run more than once in tests)."""
    if hook not in demo_seed_hooks:
        demo_seed_hooks.append(hook)


def var_secret(filename: str, *, length: int = 12) -> str:
    """A development secret generated once into settings.VAR_DIR (mode 0600) and reused.

    Read at call time, so tests point VAR_DIR at a temporary directory.
    """
    var_dir = Path(settings.VAR_DIR)
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / filename
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = secrets.token_urlsafe(length)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def demo_service_ensure(
    *, seed: DemoSeed, slug: str, name: str, defaults: dict[str, Any], secret_params: dict | None
) -> tuple[Service, bool]:
    """Create the demo service `slug` in the demo user's personal workspace if missing.

    Returns (service, created). An existing service (same slug or same name) is returned
    untouched: what the user changed in it stays changed.
    """
    org = seed.organization
    existing = (
        Service.objects.filter(organization=org, slug=slug).first()
        or Service.objects.filter(organization=org, name=name).first()
    )
    if existing is not None:
        return existing, False
    service = Service(
        organization=org,
        owner_workspace=seed.membership.personal_workspace,
        name=name,
        slug=slug,
        created_by=seed.user,
        **defaults,
    )
    if secret_params:
        service.set_secret_params(secret_params)
    service.full_clean()
    service.save()
    return service, True


def _catalog_service_fields(connector: Connector) -> dict[str, Any]:
    note = CATALOG_OAUTH_NOTE if connector.auth_method == "oauth2" else CATALOG_KEY_NOTE
    return {
        "description": note.format(name=connector.name),
        "base_url": connector.base_url,
        "auth_method": connector.auth_method,
        # Already the shape a Service stores; the user adds the client id and secret.
        "auth_params": dict(connector.auth_params),
        "extra_params": [
            p.model_dump(mode="json", exclude_none=True) for p in connector.extra_params
        ],
        "default_headers": dict(connector.default_headers),
        "test_request": connector.test_request.model_dump(mode="json"),
        "pagination": (
            connector.pagination.model_dump(mode="json", exclude_none=True)
            if connector.pagination is not None
            else {}
        ),
        "source": Source.CATALOG,
        "source_detail": connector.key,
    }


def _seed_catalog_services(seed: DemoSeed) -> None:
    catalog = load_catalog()
    for key in DEMO_CONNECTORS:
        connector = catalog.get(key)
        if connector is None:
            logger.warning("seed_demo: connector %s is not in the catalog; skipped", key)
            continue
        service, _ = demo_service_ensure(
            seed=seed,
            slug=key,
            name=connector.name,
            defaults=_catalog_service_fields(connector),
            secret_params=None,
        )
        seed.services.append(service)


def _demo_membership(user: AbstractBaseUser) -> tuple[Organization, Membership]:
    org = Organization.objects.filter(slug=DEMO_ORG_SLUG).first()
    if org is None:
        org = organization_create(name=DEMO_ORG_NAME, slug=DEMO_ORG_SLUG, owner=user)
    membership = Membership.objects.filter(organization=org, user=user).first()
    if membership is None:
        membership = membership_create(organization=org, user=user, role=Role.OWNER, actor=None)
    return org, membership


@transaction.atomic
def seed_demo() -> DemoSeed:
    """Create (or find) the demo org, user and services; return them and the lines to print."""
    password = var_secret(DEMO_PASSWORD_FILE)
    user = ensure_user(DEMO_EMAIL, password)
    org, membership = _demo_membership(user)
    seed = DemoSeed(organization=org, user=user, membership=membership, password=password)
    _seed_catalog_services(seed)
    for hook in demo_seed_hooks:
        hook(seed)
    seed.lines.insert(
        0,
        LOGIN_LINE.format(
            public_url=settings.TRAYSVC_PUBLIC_URL, email=DEMO_EMAIL, password=password
        ),
    )
    return seed
