"""The demo's "Sandbox" services, wired to the sandbox OAuth2 provider (a seed_demo hook).

Registered by SandboxConfig.ready(), so `manage.py seed_demo` adds these only when the
sandbox is on. Each run re-applies the wiring (URLs on TRAYSVC_PUBLIC_URL, client id and
secret) to the services it created — a new PORT or a rotated secret keeps them working —
and leaves everything else the user changed alone.
"""

from __future__ import annotations

from typing import Any

from sandbox.clients import SandboxApps, ensure_sandbox_apps
from services.models import Service, Source
from services.seed import DemoSeed, demo_service_ensure

SEED_MARK = "sandbox"  # Service.source_detail of the services this module manages
SANDBOX_SCOPES = ["read", "profile"]
# Matches sandbox.views.items: ?page=N&per_page=M, "next" in the body, list under "items".
SANDBOX_PAGINATION = {
    "kind": "cursor",
    "cursor_path": "next",
    "cursor_param": "page",
    "limit_param": "per_page",
    "items_path": "items",
}
SANDBOX_DESCRIPTION = (
    "The built-in sandbox API behind a real OAuth2 provider (authorization code + PKCE, "
    "short-lived access tokens, rotating refresh tokens). Try GET /me, GET /items?per_page=5, "
    "GET /flaky?status=429&retry_after=2 and POST /echo."
)
SANDBOX_CC_DESCRIPTION = (
    "The sandbox API with the client credentials grant: no user, no consent page; the "
    "authentication gets its token directly from the sandbox provider."
)
PROVIDER_LINE = "Sandbox OAuth2 provider at {issuer}/ (sandbox end user {email} / {password})"


def _wiring(apps: SandboxApps, *, grant_type: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(auth_params keys, secret params) that follow the sandbox apps and the public URL."""
    if grant_type == "client_credentials":
        params = {"client_id": apps.cc_client_id, "token_url": apps.token_url}
        return params, {"client_secret": apps.cc_client_secret}
    params = {
        "client_id": apps.client_id,
        "authorize_url": apps.authorize_url,
        "token_url": apps.token_url,
    }
    return params, {"client_secret": apps.client_secret}


def _ensure(
    seed: DemoSeed, apps: SandboxApps, *, slug: str, name: str, grant_type: str, description: str
) -> Service:
    wiring, secret = _wiring(apps, grant_type=grant_type)
    auth_params = {
        **wiring,
        "grant_type": grant_type,
        "scopes": list(SANDBOX_SCOPES),
        "pkce": grant_type == "authorization_code",
        "token_endpoint_auth": "basic",
        "revoke_url": apps.revoke_url,
    }
    service, created = demo_service_ensure(
        seed=seed,
        slug=slug,
        name=name,
        defaults={
            "description": description,
            "base_url": apps.api_base,
            "auth_method": "oauth2",
            "auth_params": auth_params,
            "extra_params": [],
            "test_request": {"method": "GET", "path": "/me"},
            "pagination": dict(SANDBOX_PAGINATION),
            "source": Source.CUSTOM,
            "source_detail": SEED_MARK,
        },
        secret_params=secret,
    )
    if not created and service.source_detail == SEED_MARK:
        service.base_url = apps.api_base
        service.auth_params = {**service.auth_params, **wiring, "revoke_url": apps.revoke_url}
        service.set_secret_params({**service.get_secret_params(), **secret})
        service.full_clean()
        service.save()
    return service


def seed_sandbox_services(seed: DemoSeed) -> None:
    """seed_demo hook: the sandbox clients, a "Sandbox" service and its client-credentials twin."""
    apps = ensure_sandbox_apps()
    seed.services.append(
        _ensure(
            seed,
            apps,
            slug="sandbox",
            name="Sandbox",
            grant_type="authorization_code",
            description=SANDBOX_DESCRIPTION,
        )
    )
    seed.services.append(
        _ensure(
            seed,
            apps,
            slug="sandbox-client-credentials",
            name="Sandbox (client credentials)",
            grant_type="client_credentials",
            description=SANDBOX_CC_DESCRIPTION,
        )
    )
    seed.lines.append(
        PROVIDER_LINE.format(issuer=apps.issuer, email=apps.user_email, password=apps.user_password)
    )
