"""The sandbox provider's own OAuth clients and end user, created idempotently.

`ensure_sandbox_apps()` makes sure two django-oauth-toolkit applications exist — a
confidential authorization-code client whose redirect URI is traysvc's own
`<TRAYSVC_PUBLIC_URL>/oauth2/callback`, and a client-credentials client — plus the sandbox end
user, and returns everything a service needs to use them, plain client secrets included.

Secrets: DOT stores only a hash of a client secret. The plain secret is generated here, kept
encrypted in `SandboxClientSecret`, and returned unchanged on later calls, so services seeded
earlier keep working. A new secret is generated when asked (`rotate=True`), when the stored
one no longer matches DOT's hash (reset elsewhere), or when it cannot be decrypted (its key
was dropped from TRAYSVC_ENCRYPTION_KEYS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.urls import reverse
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_application_model

from sandbox.models import SandboxClientSecret
from services.seed import var_secret
from traysvc.crypto import DecryptionError
from workspaces.management.commands.createorg import ensure_user

WEB_CLIENT_ID = "traysvc-sandbox-web"
WEB_CLIENT_NAME = "traysvc sandbox client"
CC_CLIENT_ID = "traysvc-sandbox-cc"
CC_CLIENT_NAME = "traysvc sandbox machine client"
SANDBOX_USER_EMAIL = "sandbox-user@example.com"
SANDBOX_USER_PASSWORD_FILE = "sandbox_user_password"
CALLBACK_PATH = "/oauth2/callback"


@dataclass(frozen=True)
class SandboxApps:
    """Everything a Service needs to use the sandbox provider; URLs on the public URL."""

    client_id: str
    client_secret: str
    cc_client_id: str
    cc_client_secret: str
    authorize_url: str
    token_url: str
    revoke_url: str
    api_base: str
    issuer: str
    redirect_uri: str
    user_email: str
    user_password: str


def ensure_sandbox_user() -> tuple[AbstractBaseUser, str]:
    """The sandbox end user (email verified) and its password, generated once into var/."""
    password = var_secret(SANDBOX_USER_PASSWORD_FILE)
    return ensure_user(SANDBOX_USER_EMAIL, password), password


def _stored_secret(application: Any) -> str | None:
    """The plain secret kept for this application, if it still matches DOT's hash."""
    record = SandboxClientSecret.objects.filter(client_id=application.client_id).first()
    if record is None or record.secret_hash != application.client_secret:
        return None
    try:
        return record.get_secret()
    except DecryptionError:
        return None


def _ensure_application(
    *, client_id: str, name: str, grant_type: str, redirect_uris: str, rotate: bool
) -> str:
    """Create or update one confidential application; return its plain client secret."""
    application_model = get_application_model()
    app = application_model.objects.select_for_update().filter(client_id=client_id).first()
    if app is None:
        app = application_model(client_id=client_id)
    app.name = name
    app.client_type = application_model.CLIENT_CONFIDENTIAL
    app.authorization_grant_type = grant_type
    app.redirect_uris = redirect_uris
    app.algorithm = application_model.NO_ALGORITHM
    app.skip_authorization = False
    app.hash_client_secret = True
    plain = None if rotate or app.pk is None else _stored_secret(app)
    fresh = plain is None
    if plain is None:
        plain = generate_client_secret()
        app.client_secret = plain
    app.full_clean()
    app.save()  # hashes a plain client_secret in place
    if fresh:  # keep the plain secret next to the hash DOT just stored
        record = SandboxClientSecret.objects.filter(client_id=app.client_id).first()
        if record is None:
            record = SandboxClientSecret(client_id=app.client_id)
        record.set_secret(plain)
        record.secret_hash = app.client_secret
        record.full_clean()
        record.save()
    return plain


@transaction.atomic
def ensure_sandbox_apps(*, rotate: bool = False) -> SandboxApps:
    """Create or update the sandbox's clients and end user; return their credentials.

    Idempotent: the same client ids and secrets come back on every call unless `rotate`
    asks for new secrets. The redirect URI follows TRAYSVC_PUBLIC_URL, so it is updated when
    `make run PORT=N` changes the public URL.
    """
    application_model = get_application_model()
    public_url = settings.TRAYSVC_PUBLIC_URL
    redirect_uri = public_url + CALLBACK_PATH
    client_secret = _ensure_application(
        client_id=WEB_CLIENT_ID,
        name=WEB_CLIENT_NAME,
        grant_type=application_model.GRANT_AUTHORIZATION_CODE,
        redirect_uris=redirect_uri,
        rotate=rotate,
    )
    cc_client_secret = _ensure_application(
        client_id=CC_CLIENT_ID,
        name=CC_CLIENT_NAME,
        grant_type=application_model.GRANT_CLIENT_CREDENTIALS,
        redirect_uris="",
        rotate=rotate,
    )
    _, password = ensure_sandbox_user()
    return SandboxApps(
        client_id=WEB_CLIENT_ID,
        client_secret=client_secret,
        cc_client_id=CC_CLIENT_ID,
        cc_client_secret=cc_client_secret,
        authorize_url=public_url + reverse("oauth2_provider:authorize"),
        token_url=public_url + reverse("oauth2_provider:token"),
        revoke_url=public_url + reverse("oauth2_provider:revoke-token"),
        api_base=public_url + "/sandbox/api",
        issuer=settings.SANDBOX_ISSUER,
        redirect_uri=redirect_uri,
        user_email=SANDBOX_USER_EMAIL,
        user_password=password,
    )
