"""seed_demo: demo org, user and services, idempotent; Sandbox services wired to the provider."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from services import seed as seed_module
from services.models import Service
from services.schemas import Pagination
from workspaces.models import Membership, Organization, Workspace

pytestmark = pytest.mark.django_db

SANDBOX_SLUGS = {"sandbox", "sandbox-client-credentials"}
CATALOG_SLUGS = {"spotify", "airtable", "github"}


def run_seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        "orgs": Organization.objects.count(),
        "users": get_user_model().objects.count(),
        "memberships": Membership.objects.count(),
        "workspaces": Workspace.objects.count(),
        "services": Service.objects.count(),
    }


def test_seed_prints_a_login_that_works(settings) -> None:
    output = run_seed()
    password = (settings.VAR_DIR / "demo_password").read_text().strip()
    assert output.splitlines()[0] == (
        f"Sign in at {settings.TRAYSVC_PUBLIC_URL}/accounts/login/ as demo@example.com / {password}"
    )
    assert Client().login(username="demo@example.com", password=password)
    assert (settings.VAR_DIR / "demo_password").stat().st_mode & 0o077 == 0


def test_seed_twice_gives_the_same_rows_and_login() -> None:
    first = run_seed()
    before = counts()
    second = run_seed()
    assert counts() == before
    assert second == first
    assert before["orgs"] == 1 and before["services"] == 5


def test_seed_creates_the_demo_org_owned_by_the_demo_user() -> None:
    run_seed()
    org = Organization.objects.get(slug="demo")
    membership = Membership.objects.get(organization=org)
    assert org.name == "Demo"
    assert membership.user.email == "demo@example.com"
    assert membership.role == "owner"
    services = Service.objects.filter(organization=org)
    assert set(services.values_list("slug", flat=True)) == CATALOG_SLUGS | SANDBOX_SLUGS
    assert {s.owner_workspace for s in services} == {membership.personal_workspace}


def test_catalog_services_copy_their_connector() -> None:
    from services.catalog import load_catalog

    run_seed()
    catalog = load_catalog()
    for slug in CATALOG_SLUGS:
        service = Service.objects.get(slug=slug)
        connector = catalog[slug]
        assert service.source == "catalog" and service.source_detail == slug
        assert service.base_url == connector.base_url
        assert service.auth_method == connector.auth_method
        assert service.test_request == connector.test_request.model_dump(mode="json")
    github = Service.objects.get(slug="github")
    assert github.auth_params["token_url"] == "https://github.com/login/oauth/access_token"
    assert github.auth_params["token_placement"] == "bearer"
    assert github.default_headers["Accept"] == "application/vnd.github+json"


def test_catalog_services_store_the_connector_params_unchanged() -> None:
    from services.auth_methods import get_method
    from services.catalog import load_catalog

    run_seed()
    catalog = load_catalog()
    for slug in CATALOG_SLUGS:
        service = Service.objects.get(slug=slug)
        assert service.auth_params == catalog[slug].auth_params, slug
        # Only the service's own registration is missing: with it, the method accepts them.
        oauth2 = service.auth_method == "oauth2"
        registration = {"client_id": "c", "client_secret": "s"} if oauth2 else {}
        get_method(service.auth_method).validate_service_params(
            {**service.auth_params, **registration}
        )


def test_user_edits_survive_a_second_seed() -> None:
    run_seed()
    spotify = Service.objects.get(slug="spotify")
    spotify.description = "mine now"
    spotify.save()
    sandbox = Service.objects.get(slug="sandbox")
    sandbox.auth_params = {**sandbox.auth_params, "scopes": ["read"]}
    sandbox.save()
    run_seed()
    assert Service.objects.get(slug="spotify").description == "mine now"
    assert Service.objects.get(slug="sandbox").auth_params["scopes"] == ["read"]


def test_sandbox_service_is_wired_to_the_provider(settings) -> None:
    run_seed()
    service = Service.objects.get(slug="sandbox")
    public = settings.TRAYSVC_PUBLIC_URL
    assert service.base_url == public + "/sandbox/api"
    assert service.auth_method == "oauth2"
    assert service.auth_params == {
        "client_id": "traysvc-sandbox-web",
        "authorize_url": public + "/sandbox/o/authorize/",
        "token_url": public + "/sandbox/o/token/",
        "revoke_url": public + "/sandbox/o/revoke_token/",
        "grant_type": "authorization_code",
        "scopes": ["read", "profile"],
        "pkce": True,
        "token_endpoint_auth": "basic",
    }
    assert service.extra_params == []
    assert service.test_request == {"method": "GET", "path": "/me"}
    Pagination.model_validate(service.pagination)
    assert service.pagination["cursor_path"] == "next"
    assert "client_secret" not in str(service.auth_params)
    cc = Service.objects.get(slug="sandbox-client-credentials")
    assert cc.auth_params["grant_type"] == "client_credentials"
    assert cc.auth_params["pkce"] is False
    assert "authorize_url" not in cc.auth_params


def test_seeded_params_validate_with_the_oauth2_method() -> None:
    method = pytest.importorskip("services.auth_methods.oauth2").METHOD
    run_seed()
    for slug in SANDBOX_SLUGS:
        service = Service.objects.get(slug=slug)
        method.validate_service_params({**service.auth_params, **service.get_secret_params()})


def test_seeded_client_secret_gets_a_token(provider) -> None:  # type: ignore[no-untyped-def]
    run_seed()
    secret = Service.objects.get(slug="sandbox-client-credentials").get_secret_params()
    response = provider.token(
        {"grant_type": "client_credentials", "scope": "read profile"},
        client_id="traysvc-sandbox-cc",
        client_secret=secret["client_secret"],
    )
    assert response.status_code == 200, response.content
    token = response.json()["access_token"]
    assert provider.api("GET", "me", token).json()["client_id"] == "traysvc-sandbox-cc"


def test_rotated_sandbox_secret_is_rewired_by_the_next_seed() -> None:
    from sandbox.clients import ensure_sandbox_apps

    run_seed()
    rotated = ensure_sandbox_apps(rotate=True)
    run_seed()
    service = Service.objects.get(slug="sandbox")
    assert service.get_secret_params() == {"client_secret": rotated.client_secret}


def test_new_public_url_is_rewired_by_the_next_seed(settings) -> None:
    run_seed()
    settings.TRAYSVC_PUBLIC_URL = "http://127.0.0.1:9001"
    run_seed()
    service = Service.objects.get(slug="sandbox")
    assert service.base_url == "http://127.0.0.1:9001/sandbox/api"
    assert service.auth_params["token_url"] == "http://127.0.0.1:9001/sandbox/o/token/"


def test_without_the_sandbox_only_catalog_services_are_seeded(monkeypatch) -> None:
    monkeypatch.setattr(seed_module, "demo_seed_hooks", [])
    output = run_seed()
    assert set(Service.objects.values_list("slug", flat=True)) == CATALOG_SLUGS
    assert "Sandbox" not in output
    assert output.startswith("Sign in at ")


def test_existing_same_named_service_is_left_alone() -> None:
    seed = seed_module.seed_demo()
    Service.objects.filter(slug="airtable").update(slug="my-airtable")
    seed_module.seed_demo()
    assert Service.objects.filter(name="Airtable").count() == 1
    assert Service.objects.get(name="Airtable").slug == "my-airtable"
    assert seed.organization.slug == "demo"
