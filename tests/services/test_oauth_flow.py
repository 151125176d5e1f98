"""The authorization code flow (state, PKCE S256, iss) and client credentials, against the real
django-oauth-toolkit provider in sandbox/ on live_server, and misbehaving token endpoints on
pytest-httpserver."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from services import oauth
from services.auth_methods.oauth2 import pkce_challenge
from services.models import Authentication, AuthStatus, OAuthFlow
from services.oauth import (
    OAuthFlowError,
    client_credentials_connect,
    oauth_flow_finish,
    oauth_flow_start,
)
from traysvc import crypto
from workspaces.models import AuditEvent

from .conftest import consent, make_oauth_service, token_body


def test_rfc7636_appendix_b_test_vector() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def _start(actors, service, name="Flow"):  # type: ignore[no-untyped-def]
    return oauth_flow_start(
        membership=actors.owner_m,
        workspace=actors.owner_m.personal_workspace,
        service=service,
        name=name,
    )


def test_start_stores_hashed_state_encrypted_verifier_and_exact_redirect(
    actors, local_service, settings
):  # type: ignore[no-untyped-def]
    settings.TRAYSVC_PUBLIC_URL = "https://traysvc.example"
    url, state = _start(actors, local_service)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    flow = OAuthFlow.objects.get()
    assert query["state"] == state and state not in flow.state_hash
    assert query["redirect_uri"] == "https://traysvc.example/oauth2/callback"
    assert flow.redirect_uri == query["redirect_uri"]
    verifier = crypto.decrypt(flow.code_verifier, aad=flow.verifier_aad).decode()
    assert verifier not in flow.code_verifier
    assert query["code_challenge"] == pkce_challenge(verifier)
    assert query["code_challenge_method"] == "S256"
    assert flow.expires_at - timezone.now() <= timedelta(minutes=10)
    assert flow.issuer == local_service.auth_params["authorize_url"].rsplit("/", 1)[0]


def test_full_authorization_code_pkce_flow_makes_an_active_authentication(
    actors, connect, provider
):  # type: ignore[no-untyped-def]
    authentication = connect(name="Mine")
    assert authentication.status == AuthStatus.ACTIVE
    assert authentication.name == "Mine" and authentication.created_by == actors.owner
    stored = authentication.get_secrets()
    assert stored["access_token"] and stored["refresh_token"]
    assert stored["access_token"] not in authentication.secrets
    assert set(authentication.scopes) == {"read", "profile"}
    assert authentication.expires_at > timezone.now()
    assert authentication.grant_started_at is not None
    # the provider really issued that token: its own table has it
    from oauth2_provider.models import AccessToken

    assert AccessToken.objects.filter(token=stored["access_token"]).exists()
    events = AuditEvent.objects.filter(target_id=str(authentication.public_id))
    assert "authentication.create" in {e.action for e in events}
    for event in AuditEvent.objects.all():
        assert stored["access_token"] not in str(event.details)


def test_reconnect_keeps_the_same_row_and_id(connect):  # type: ignore[no-untyped-def]
    first = connect(name="Keep me")
    old = first.get_secrets()["access_token"]
    Authentication.objects.filter(pk=first.pk).update(status=AuthStatus.NEEDS_REAUTH)
    first.refresh_from_db()
    again = connect(authentication=first)
    assert again.pk == first.pk and again.public_id == first.public_id
    assert again.status == AuthStatus.ACTIVE
    assert again.get_secrets()["access_token"] != old
    assert Authentication.objects.count() == 1


def test_forged_state_is_refused(actors, local_service):  # type: ignore[no-untyped-def]
    _start(actors, local_service)
    with pytest.raises(OAuthFlowError) as info:
        oauth_flow_finish(user=actors.owner, state="forged-state", code="x")
    assert info.value.message == oauth.FLOW_UNKNOWN
    with pytest.raises(OAuthFlowError) as info:
        oauth_flow_finish(user=actors.owner, state="", code="x")
    assert info.value.message == oauth.FLOW_UNKNOWN


def test_reused_state_is_refused(actors, local_service, httpserver):  # type: ignore[no-untyped-def]
    httpserver.expect_request("/token", method="POST").respond_with_json(token_body())
    _, state = _start(actors, local_service)
    oauth_flow_finish(user=actors.owner, state=state, code="code-1")
    with pytest.raises(OAuthFlowError) as info:
        oauth_flow_finish(user=actors.owner, state=state, code="code-1")
    assert info.value.message == oauth.FLOW_REUSED
    assert Authentication.objects.count() == 1


def test_expired_state_is_refused(actors, local_service):  # type: ignore[no-untyped-def]
    _, state = _start(actors, local_service)
    OAuthFlow.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(OAuthFlowError) as info:
        oauth_flow_finish(user=actors.owner, state=state, code="x")
    assert info.value.message == oauth.FLOW_EXPIRED


def test_another_users_flow_is_refused_and_left_usable(actors, local_service, httpserver):  # type: ignore[no-untyped-def]
    httpserver.expect_request("/token", method="POST").respond_with_json(token_body())
    _, state = _start(actors, local_service)
    with pytest.raises(OAuthFlowError) as info:
        oauth_flow_finish(user=actors.member, state=state, code="x")
    assert info.value.message == oauth.FLOW_OTHER_USER
    assert OAuthFlow.objects.get().used_at is None
    assert oauth_flow_finish(user=actors.owner, state=state, code="x").status == AuthStatus.ACTIVE


def test_iss_of_another_server_is_refused(actors, local_service):  # type: ignore[no-untyped-def]
    _, state = _start(actors, local_service)
    with pytest.raises(OAuthFlowError) as info:
        oauth_flow_finish(user=actors.owner, state=state, code="x", iss="https://evil.example")
    assert info.value.message == oauth.FLOW_ISS_MISMATCH.format(iss="https://evil.example")


def test_provider_errors_are_shown_plainly(actors, local_service):  # type: ignore[no-untyped-def]
    _, state = _start(actors, local_service)
    with pytest.raises(OAuthFlowError) as info:
        oauth_flow_finish(user=actors.owner, state=state, error="access_denied")
    assert info.value.message == oauth.PROVIDER_ACCESS_DENIED
    _, state = _start(actors, local_service, name="Other")
    with pytest.raises(OAuthFlowError) as info:
        oauth_flow_finish(
            user=actors.owner, state=state, error="invalid_scope", error_description="No\nadmin"
        )
    assert info.value.message == oauth.PROVIDER_ERROR.format(
        error="invalid_scope", description=": No admin"
    )
    assert not Authentication.objects.exists()


def test_token_endpoint_html_is_explained(actors, local_service, httpserver):  # type: ignore[no-untyped-def]
    httpserver.expect_request("/token").respond_with_data(
        "<html>Bad gateway</html>", status=502, content_type="text/html"
    )
    _, state = _start(actors, local_service)
    with pytest.raises(OAuthFlowError) as info:
        oauth_flow_finish(user=actors.owner, state=state, code="x")
    assert info.value.message == oauth.TOKEN_GARBAGE.format(
        detail="the token endpoint answered HTML (status 502)"
    )


def test_token_endpoint_refusal_is_explained(actors, local_service, httpserver):  # type: ignore[no-untyped-def]
    httpserver.expect_request("/token").respond_with_json(
        {"error": "invalid_grant", "error_description": "Code expired"}, status=400
    )
    _, state = _start(actors, local_service)
    with pytest.raises(OAuthFlowError) as info:
        oauth_flow_finish(user=actors.owner, state=state, code="x")
    assert info.value.message == oauth.TOKEN_REFUSED.format(
        error="invalid_grant", description=": Code expired"
    )


def test_hanging_token_endpoint_times_out(actors, local_service, httpserver, settings):  # type: ignore[no-untyped-def]
    settings.AUTH_TOKEN_TIMEOUT_SECONDS = 1
    release = threading.Event()

    def hang(request):  # type: ignore[no-untyped-def]
        release.wait(5)
        from werkzeug import Response

        return Response("{}", content_type="application/json")

    httpserver.expect_request("/token").respond_with_handler(hang)
    _, state = _start(actors, local_service)
    started = time.monotonic()
    try:
        with pytest.raises(OAuthFlowError) as info:
            oauth_flow_finish(user=actors.owner, state=state, code="x")
    finally:
        release.set()
    assert info.value.message == oauth.TOKEN_TIMEOUT
    assert time.monotonic() - started < 4


def test_loopback_token_endpoint_stays_refused(actors, httpserver, settings):  # type: ignore[no-untyped-def]
    """Without HTTPCLIENT_ALLOW_NETWORKS a loopback token URL is refused, sandbox on or off."""
    settings.HTTPCLIENT_ALLOW_NETWORKS = []
    settings.TRAYSVC_SANDBOX = True
    settings.TRAYSVC_PUBLIC_URL = httpserver.url_for("").rstrip("/")
    service = make_oauth_service(
        actors.org_a, actors.owner_m.personal_workspace, name="Loop", base_url="https://x.example",
        auth_params={"client_id": "c", "authorize_url": "https://x.example/a",
                     "token_url": httpserver.url_for("/token"), "pkce": True},
        client_secret=None,
    )  # fmt: skip
    _, state = _start(actors, service)
    with pytest.raises(OAuthFlowError) as info:
        oauth_flow_finish(user=actors.owner, state=state, code="x")
    assert "refused" in info.value.message and "loopback" in info.value.message
    assert httpserver.log == []
    # the exemption is the app's own origin, /sandbox/ only
    own = settings.TRAYSVC_PUBLIC_URL
    from traysvc.egress.guard import is_exempt

    token_url = own + "/sandbox/o/token/"
    assert is_exempt(httpx.URL(token_url), oauth.egress_allow_origins(token_url))
    assert not is_exempt(httpx.URL(own + "/token"), oauth.egress_allow_origins(own + "/token"))
    settings.TRAYSVC_SANDBOX = False
    assert not oauth.egress_allow_origins(own + "/sandbox/o/token/")


def test_name_taken_is_refused_at_start(actors, local_service, local_grant):  # type: ignore[no-untyped-def]
    taken = local_grant()
    with pytest.raises(ValidationError) as info:
        _start(actors, local_service, name=taken.name)
    assert info.value.message_dict["name"] == [oauth.NAME_TAKEN.format(name=taken.name)]


def test_client_credentials_obtains_the_first_token_at_once(actors, cc_service):  # type: ignore[no-untyped-def]
    authentication = client_credentials_connect(
        membership=actors.owner_m,
        workspace=actors.owner_m.personal_workspace,
        service=cc_service,
        name="Machine",
    )
    assert authentication.status == AuthStatus.ACTIVE
    from oauth2_provider.models import AccessToken

    token = authentication.get_secrets()["access_token"]
    assert AccessToken.objects.filter(token=token, user__isnull=True).exists()
    assert authentication.scopes == ["read"]


def test_client_credentials_failure_says_so_and_creates_nothing(actors, cc_service):  # type: ignore[no-untyped-def]
    cc_service.set_secret_params({"client_secret": "wrong"})
    cc_service.save()
    with pytest.raises(OAuthFlowError) as info:
        client_credentials_connect(
            membership=actors.owner_m,
            workspace=actors.owner_m.personal_workspace,
            service=cc_service,
            name="Machine",
        )
    assert info.value.message.startswith(oauth.CC_FAILED.format(reason="")[:40])
    assert "invalid_client" in info.value.message
    assert not Authentication.objects.exists()


def test_member_cannot_use_anothers_workspace(actors, local_service):  # type: ignore[no-untyped-def]
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        oauth_flow_start(
            membership=actors.member_m,
            workspace=actors.owner_m.personal_workspace,
            service=local_service,
            name="Sneaky",
        )
    assert not OAuthFlow.objects.exists()


def test_consent_redirect_carries_the_providers_iss(actors, sandbox_service, live_server):  # type: ignore[no-untyped-def]
    url, _ = _start(actors, sandbox_service)
    callback = consent(url)
    assert callback.url.startswith(oauth.redirect_uri() + "?")
    assert callback.params["iss"] == f"{live_server.url}/sandbox/o"
