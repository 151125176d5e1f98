"""Authentication pages: create, show, edit, delete, refresh, connect, and the OAuth callback."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.messages import get_messages

from services.forms_auth import SECRET_STORED
from services.models import Authentication, AuthStatus, OAuthFlow
from services.oauth import FLOW_REUSED, FLOW_UNKNOWN
from services.views_auth import (
    CC_CONNECT_FAILED,
    CONNECTED,
    CREATED,
    DECLINED,
    DELETED,
    NOT_OAUTH2_REFRESH,
    RECONNECTED,
    UPDATED,
)
from workspaces.models import AuditEvent

pytestmark = pytest.mark.django_db

TOKEN = "tok-SECRET-1234567890abcdef"  # noqa: S105 - a test value
NEW_TOKEN = "tok-SECRET-replacement-0987"  # noqa: S105
PASSWORD = "pw SECRET with spaces "  # noqa: S105
ACCESS = "access-SECRET-from-provider"  # noqa: S105
REFRESH = "refresh-SECRET-from-provider"  # noqa: S105
CLIENT_SECRET = "client-SECRET-of-the-app"  # noqa: S105
SECRETS = (TOKEN, NEW_TOKEN, PASSWORD.strip(), ACCESS, REFRESH, CLIENT_SECRET)


def _service(membership, name="Tokens", method="token", **kwargs):  # type: ignore[no-untyped-def]
    from services.services import service_create

    kwargs.setdefault("base_url", "https://api.example.com")
    return service_create(membership=membership, name=name, auth_method=method, **kwargs)


def _token_auth(membership, service, name="Prod", workspace=None):  # type: ignore[no-untyped-def]
    from services.authentications import authentication_create

    return authentication_create(
        membership=membership,
        workspace=workspace or membership.personal_workspace,
        service=service,
        name=name,
        values={"token": TOKEN},
    )


def _url(org, *parts: str) -> str:  # type: ignore[no-untyped-def]
    return "/".join([f"/o/{org.slug}/authentications", *[p for p in parts if p]]) + "/"


def _messages(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in get_messages(response.wsgi_request)]


def _assert_no_secret(content: bytes) -> None:
    text = content.decode()
    for secret in SECRETS:
        assert secret not in text, secret


@pytest.fixture
def token_service(actors):  # type: ignore[no-untyped-def]
    return _service(actors.owner_m)


@pytest.fixture
def oauth_service(actors, httpserver, settings):  # type: ignore[no-untyped-def]
    """An authorization-code OAuth2 service whose token endpoint is a real loopback server."""
    settings.HTTPCLIENT_ALLOW_NETWORKS = ["127.0.0.0/8"]
    return _service(
        actors.owner_m,
        name="Provider",
        method="oauth2",
        auth_params={
            "client_id": "app-1",
            "client_secret": CLIENT_SECRET,
            "authorize_url": "https://provider.example/authorize",
            "token_url": httpserver.url_for("/token"),
            "scopes": ["read"],
        },
        test_request={"method": "GET", "path": "/me"},
    )


# ---- list and access --------------------------------------------------------------------------


def test_owner_lists_their_authentications_with_status(actors, client_for, token_service):  # type: ignore[no-untyped-def]
    _token_auth(actors.owner_m, token_service)
    response = client_for(actors.owner).get(_url(actors.org_a))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Prod" in body and "Tokens" in body
    assert 'data-status="active"' in body
    _assert_no_secret(response.content)


def test_list_query_count_does_not_grow_with_rows(  # type: ignore[no-untyped-def]
    actors, client_for, token_service, django_assert_max_num_queries
):
    for i in range(8):
        _token_auth(actors.owner_m, token_service, name=f"Auth {i}")
    client = client_for(actors.owner)
    with django_assert_max_num_queries(8):
        assert client.get(_url(actors.org_a)).status_code == 200


def test_member_does_not_see_the_owners_personal_authentication(  # type: ignore[no-untyped-def]
    actors, client_for, token_service
):
    auth = _token_auth(actors.owner_m, token_service)
    member = client_for(actors.member)
    assert "Prod" not in member.get(_url(actors.org_a)).content.decode()
    assert member.get(_url(actors.org_a, str(auth.public_id))).status_code == 404
    assert member.post(_url(actors.org_a, str(auth.public_id), "delete")).status_code == 404
    assert Authentication.objects.filter(pk=auth.pk).exists()


def test_admin_gets_404_for_a_members_personal_authentication(  # type: ignore[no-untyped-def]
    actors, client_for, token_service
):
    auth = _token_auth(actors.member_m, token_service)
    admin = client_for(actors.admin)
    assert admin.get(_url(actors.org_a, str(auth.public_id))).status_code == 404
    edit = admin.post(_url(actors.org_a, str(auth.public_id), "edit"), {"name": "x"})
    assert edit.status_code == 404
    assert Authentication.objects.get(pk=auth.pk).name == "Prod"


def test_shared_workspace_authentication_is_visible_to_its_members(  # type: ignore[no-untyped-def]
    actors, client_for, token_service
):
    from workspaces.services import workspace_create_shared, workspace_member_add

    shared = workspace_create_shared(organization=actors.org_a, name="Team", actor=actors.owner_m)
    workspace_member_add(workspace=shared, membership=actors.owner_m, actor=actors.owner_m)
    workspace_member_add(workspace=shared, membership=actors.member_m, actor=actors.owner_m)
    auth = _token_auth(actors.owner_m, token_service, name="Team token", workspace=shared)
    page = client_for(actors.member).get(_url(actors.org_a, str(auth.public_id)))
    assert page.status_code == 200
    assert "Team token" in page.content.decode()
    assert client_for(actors.admin).get(_url(actors.org_a, str(auth.public_id))).status_code == 404


def test_outsider_gets_404_everywhere_and_nothing_changes(  # type: ignore[no-untyped-def]
    actors, client_for, token_service
):
    auth = _token_auth(actors.owner_m, token_service)
    outsider = client_for(actors.outsider)
    one = str(auth.public_id)
    assert outsider.get(_url(actors.org_a)).status_code == 404
    assert outsider.get(_url(actors.org_a, "new")).status_code == 404
    for path in ("", "edit", "delete"):
        assert outsider.get(_url(actors.org_a, one, path)).status_code == 404
    for path in ("", "edit", "delete", "refresh", "reconnect", "test"):
        assert outsider.post(_url(actors.org_a, one, path), {"name": "x"}).status_code == 404
    # Org B's URL with org A's id: still nothing.
    assert outsider.get(_url(actors.org_b, one)).status_code == 404
    auth.refresh_from_db()
    assert auth.name == "Prod"
    assert auth.get_secrets() == {"token": TOKEN}


def test_anonymous_is_sent_to_login(actors, client):  # type: ignore[no-untyped-def]
    response = client.get(_url(actors.org_a))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# ---- creating through the form ----------------------------------------------------------------


def test_create_token_authentication_in_two_steps(actors, client_for, token_service):  # type: ignore[no-untyped-def]
    client = client_for(actors.member)
    target = f"service:{token_service.public_id}"
    workspace = str(actors.member_m.personal_workspace.public_id)
    step1 = client.get(_url(actors.org_a, "new"), {"service": str(token_service.public_id)})
    assert step1.status_code == 200
    assert f'value="{target}" selected' in step1.content.decode()
    step2 = client.get(
        _url(actors.org_a, "new"),
        {"step": "values", "target": target, "workspace": workspace, "name": "Mine"},
    )
    assert step2.status_code == 200
    assert 'type="password" name="value_token"' in step2.content.decode()
    response = client.post(
        _url(actors.org_a, "new"),
        {"target": target, "workspace": workspace, "name": "Mine", "value_token": TOKEN},
    )
    auth = Authentication.objects.get(name="Mine")
    assert response.status_code == 302
    assert response["Location"] == auth.get_absolute_url()
    assert CREATED.format(name="Mine") in _messages(response)
    assert auth.workspace == actors.member_m.personal_workspace
    assert auth.service == token_service
    assert auth.get_secrets() == {"token": TOKEN}
    assert TOKEN not in auth.secrets  # encrypted at rest
    assert AuditEvent.objects.filter(
        action="authentication.create", target_id=str(auth.public_id), actor=actors.member
    ).exists()


def test_the_secret_is_never_shown_after_creation(actors, client_for, token_service):  # type: ignore[no-untyped-def]
    auth = _token_auth(actors.owner_m, token_service)
    client = client_for(actors.owner)
    for path in ("", str(auth.public_id), f"{auth.public_id}/edit", f"{auth.public_id}/delete"):
        page = client.get(_url(actors.org_a, path))
        assert page.status_code == 200, path
        _assert_no_secret(page.content)
    edit = client.get(_url(actors.org_a, str(auth.public_id), "edit"))
    assert SECRET_STORED in edit.content.decode()


def test_create_form_shows_field_errors_and_creates_nothing(actors, client_for, token_service):  # type: ignore[no-untyped-def]
    client = client_for(actors.owner)
    response = client.post(
        _url(actors.org_a, "new"),
        {
            "target": f"service:{token_service.public_id}",
            "workspace": str(actors.owner_m.personal_workspace.public_id),
            "name": "Broken",
            "value_token": "",
        },
    )
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not Authentication.objects.filter(name="Broken").exists()


def test_workspace_of_another_member_is_refused(actors, client_for, token_service):  # type: ignore[no-untyped-def]
    response = client_for(actors.member).post(
        _url(actors.org_a, "new"),
        {
            "target": f"service:{token_service.public_id}",
            "workspace": str(actors.owner_m.personal_workspace.public_id),
            "name": "Sneaky",
            "value_token": TOKEN,
        },
    )
    assert response.status_code == 400
    assert not Authentication.objects.filter(name="Sneaky").exists()


def test_basic_with_extra_params_validates_required_and_pattern(actors, client_for):  # type: ignore[no-untyped-def]
    service = _service(
        actors.owner_m,
        name="Desk",
        method="basic",
        base_url="https://{{auth.subdomain}}.desk.example/api",
        extra_params=[
            {
                "key": "subdomain",
                "label": "Subdomain",
                "required": True,
                "pattern": "^[a-z0-9-]+$",
                "example": "acme",
                "help": "The part before .desk.example.",
            }
        ],
    )
    client = client_for(actors.owner)
    data = {
        "target": f"service:{service.public_id}",
        "workspace": str(actors.owner_m.personal_workspace.public_id),
        "name": "Desk login",
        "value_username": "ada",
        "value_password": PASSWORD,
        "value_subdomain": "Not Valid!",
    }
    bad = client.post(_url(actors.org_a, "new"), data)
    assert bad.status_code == 400
    body = bad.content.decode()
    assert "This value does not have the expected format, e.g. acme." in body
    assert "The part before .desk.example." in body
    _assert_no_secret(bad.content)  # the password is not echoed back
    good = client.post(_url(actors.org_a, "new"), {**data, "value_subdomain": "acme"})
    assert good.status_code == 302
    auth = Authentication.objects.get(name="Desk login")
    assert auth.values == {"subdomain": "acme"}
    assert auth.get_secrets() == {"username": "ada", "password": PASSWORD}


# ---- edit, delete, refresh ----------------------------------------------------------------------


def test_edit_with_a_blank_secret_keeps_it(actors, client_for, token_service):  # type: ignore[no-untyped-def]
    auth = _token_auth(actors.owner_m, token_service)
    client = client_for(actors.owner)
    response = client.post(
        _url(actors.org_a, str(auth.public_id), "edit"), {"name": "Renamed", "value_token": ""}
    )
    assert response.status_code == 302
    assert UPDATED.format(name="Renamed") in _messages(response)
    auth.refresh_from_db()
    assert auth.name == "Renamed"
    assert auth.get_secrets() == {"token": TOKEN}
    edit_url = _url(actors.org_a, str(auth.public_id), "edit")
    client.post(edit_url, {"name": "Renamed", "value_token": NEW_TOKEN})
    auth.refresh_from_db()
    assert auth.get_secrets() == {"token": NEW_TOKEN}
    assert AuditEvent.objects.filter(
        action="authentication.replace", target_id=str(auth.public_id)
    ).exists()
    detail = client.get(auth.get_absolute_url())
    assert "authentication.replace" in detail.content.decode()
    _assert_no_secret(detail.content)


def test_delete_asks_then_deletes_and_audits(actors, client_for, token_service):  # type: ignore[no-untyped-def]
    auth = _token_auth(actors.owner_m, token_service)
    client = client_for(actors.owner)
    confirm = client.get(_url(actors.org_a, str(auth.public_id), "delete"))
    assert confirm.status_code == 200
    assert Authentication.objects.filter(pk=auth.pk).exists()
    response = client.post(_url(actors.org_a, str(auth.public_id), "delete"))
    assert response.status_code == 302
    assert response["Location"] == _url(actors.org_a)
    assert DELETED.format(name="Prod") in _messages(response)
    assert not Authentication.objects.filter(pk=auth.pk).exists()
    assert AuditEvent.objects.filter(
        action="authentication.delete", target_id=str(auth.public_id), actor=actors.owner
    ).exists()


def test_refresh_needs_post_and_oauth2(actors, client_for, token_service):  # type: ignore[no-untyped-def]
    auth = _token_auth(actors.owner_m, token_service)
    client = client_for(actors.owner)
    assert client.post(auth.get_absolute_url()).status_code == 405
    url = _url(actors.org_a, str(auth.public_id), "refresh")
    assert client.get(url).status_code == 405
    response = client.post(url)
    assert response.status_code == 302
    assert NOT_OAUTH2_REFRESH in _messages(response)


def test_detail_explains_a_failing_status_with_the_fix(actors, client_for, token_service):  # type: ignore[no-untyped-def]
    from services.status import STATUS_EXPLANATIONS, STATUS_FIXES, authentication_transition

    auth = _token_auth(actors.owner_m, token_service)
    authentication_transition(
        authentication=auth, status=AuthStatus.REVOKED, error="The API answered 401.", code="x"
    )
    page = client_for(actors.owner).get(auth.get_absolute_url()).content.decode()
    assert 'data-status="revoked"' in page
    assert "The API answered 401." in page
    assert STATUS_EXPLANATIONS[AuthStatus.REVOKED] in page
    assert STATUS_FIXES[AuthStatus.REVOKED] in page
    assert 'id="reconnect"' in page


# ---- OAuth2: connect, callback, reconnect ------------------------------------------------------


def _connect(client, org, service, workspace, name="Grant"):  # type: ignore[no-untyped-def]
    return client.post(
        _url(org, "connect"),
        {
            "target": f"service:{service.public_id}",
            "workspace": str(workspace.public_id),
            "name": name,
        },
    )


def _connect_own(client, actors, service, name="Grant"):  # type: ignore[no-untyped-def]
    return _connect(client, actors.org_a, service, actors.owner_m.personal_workspace, name)


def _state_of(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 302, response.content
    query = parse_qs(urlsplit(response["Location"]).query)
    return query["state"][0]


def _token_answer(httpserver, access=ACCESS, refresh=REFRESH):  # type: ignore[no-untyped-def]
    httpserver.expect_oneshot_request("/token", method="POST").respond_with_data(
        json.dumps(
            {
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "bearer",
                "expires_in": "3600",
                "scope": "read",
            }
        ),
        content_type="application/json",
    )


def test_oauth2_step_two_offers_connect_not_fields(actors, client_for, oauth_service):  # type: ignore[no-untyped-def]
    page = client_for(actors.owner).get(
        _url(actors.org_a, "new"),
        {
            "step": "values",
            "target": f"service:{oauth_service.public_id}",
            "name": "G",
            "workspace": str(actors.owner_m.personal_workspace.public_id),
        },
    )
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="connect"' in body
    assert 'type="password"' not in body


def test_connect_then_callback_creates_the_authentication(  # type: ignore[no-untyped-def]
    actors, client_for, oauth_service, httpserver
):
    client = client_for(actors.owner)
    start = _connect_own(client, actors, oauth_service)
    assert start["Location"].startswith("https://provider.example/authorize?")
    assert "code_challenge_method=S256" in start["Location"]
    state = _state_of(start)
    _token_answer(httpserver)
    done = client.get("/oauth2/callback", {"state": state, "code": "the-code"})
    auth = Authentication.objects.get(name="Grant")
    assert done.status_code == 302
    assert done["Location"] == auth.get_absolute_url()
    assert CONNECTED.format(name="Grant") in _messages(done)
    assert auth.status == AuthStatus.ACTIVE
    assert auth.get_secrets()["access_token"] == ACCESS
    page = client.get(auth.get_absolute_url())
    assert page.status_code == 200
    assert "Refresh now" in page.content.decode()
    _assert_no_secret(page.content)


def test_callback_with_a_forged_state_says_so_with_400(actors, client_for):  # type: ignore[no-untyped-def]
    response = client_for(actors.owner).get("/oauth2/callback", {"state": "forged", "code": "x"})
    assert response.status_code == 400
    body = response.content.decode()
    assert FLOW_UNKNOWN in body
    assert f'href="{_url(actors.org_a)}"' in body
    assert not Authentication.objects.exists()


def test_callback_access_denied_is_shown_in_words(actors, client_for, oauth_service):  # type: ignore[no-untyped-def]
    client = client_for(actors.owner)
    state = _state_of(_connect_own(client, actors, oauth_service))
    response = client.get("/oauth2/callback", {"state": state, "error": "access_denied"})
    assert response.status_code == 400
    assert DECLINED in response.content.decode()
    assert not Authentication.objects.exists()
    # The flow is used up: coming back again is refused too, and says why.
    again = client.get("/oauth2/callback", {"state": state, "code": "late"})
    assert again.status_code == 400
    assert FLOW_REUSED in again.content.decode()


def test_callback_of_another_users_flow_is_refused(  # type: ignore[no-untyped-def]
    actors, client_for, oauth_service
):
    state = _state_of(
        _connect(
            client_for(actors.owner), actors.org_a, oauth_service, actors.owner_m.personal_workspace
        )
    )
    response = client_for(actors.admin).get("/oauth2/callback", {"state": state, "code": "x"})
    assert response.status_code == 400
    assert not Authentication.objects.exists()


def test_callback_when_the_token_endpoint_fails_is_400_not_500(  # type: ignore[no-untyped-def]
    actors, client_for, oauth_service, httpserver
):
    client = client_for(actors.owner)
    state = _state_of(_connect_own(client, actors, oauth_service))
    httpserver.expect_oneshot_request("/token").respond_with_data(
        "<html>oops</html>", status=502, content_type="text/html"
    )
    response = client.get("/oauth2/callback", {"state": state, "code": "x"})
    assert response.status_code == 400
    assert "did not answer with a token" in response.content.decode()
    assert not Authentication.objects.exists()


def test_anonymous_callback_goes_to_login_and_keeps_the_query(client):  # type: ignore[no-untyped-def]
    response = client.get("/oauth2/callback", {"state": "s", "code": "c"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/oauth2/callback%3Fstate%3Ds")


def test_reconnect_keeps_the_authentication_id(  # type: ignore[no-untyped-def]
    actors, client_for, oauth_service, httpserver
):
    client = client_for(actors.owner)
    state = _state_of(_connect_own(client, actors, oauth_service))
    _token_answer(httpserver)
    client.get("/oauth2/callback", {"state": state, "code": "one"})
    auth = Authentication.objects.get(name="Grant")
    reconnect = client.post(_url(actors.org_a, str(auth.public_id), "reconnect"))
    flow = OAuthFlow.objects.latest("created_at")
    assert flow.authentication_id == auth.pk
    _token_answer(httpserver, access="access-SECRET-second")
    done = client.get("/oauth2/callback", {"state": _state_of(reconnect), "code": "two"})
    assert done["Location"] == auth.get_absolute_url()
    assert RECONNECTED.format(name="Grant") in _messages(done)
    assert Authentication.objects.count() == 1
    auth.refresh_from_db()
    assert auth.get_secrets()["access_token"] == "access-SECRET-second"


def test_client_credentials_connects_at_once_or_says_why(  # type: ignore[no-untyped-def]
    actors, client_for, httpserver, settings
):
    settings.HTTPCLIENT_ALLOW_NETWORKS = ["127.0.0.0/8"]
    service = _service(
        actors.owner_m,
        name="Machine",
        method="oauth2",
        auth_params={
            "client_id": "m",
            "client_secret": CLIENT_SECRET,
            "grant_type": "client_credentials",
            "token_url": httpserver.url_for("/token"),
        },
    )
    client = client_for(actors.owner)
    httpserver.expect_oneshot_request("/token").respond_with_json(
        {"error": "invalid_client", "error_description": "unknown client"}, status=401
    )
    failed = _connect(client, actors.org_a, service, actors.owner_m.personal_workspace, "M")
    assert failed.status_code == 302
    [message] = _messages(failed)
    assert message.startswith(CC_CONNECT_FAILED.format(reason="")[:20])
    assert "invalid_client" in message
    assert not Authentication.objects.exists()
    _token_answer(httpserver)
    ok = _connect(client, actors.org_a, service, actors.owner_m.personal_workspace, "M")
    auth = Authentication.objects.get(name="M")
    assert ok["Location"] == auth.get_absolute_url()
    assert auth.get_secrets()["access_token"] == ACCESS


# ---- the Test button ----------------------------------------------------------------------------


def test_test_button_runs_the_test_request_and_shows_the_verdict(  # type: ignore[no-untyped-def]
    actors, client_for, httpserver, settings
):
    from httpclient.views_auth_test import TEST_PASSED, TEST_REFUSED

    settings.HTTPCLIENT_ALLOW_NETWORKS = ["127.0.0.0/8"]
    service = _service(
        actors.owner_m,
        name="Checked",
        base_url=httpserver.url_for("/api"),
        test_request={"method": "GET", "path": "/me"},
    )
    auth = _token_auth(actors.owner_m, service)
    client = client_for(actors.owner)
    url = _url(actors.org_a, str(auth.public_id), "test")
    assert client.get(url).status_code == 405
    httpserver.expect_oneshot_request(
        "/api/me", headers={"Authorization": f"Bearer {TOKEN}"}
    ).respond_with_json({"me": "ok"})
    passed = client.post(url)
    assert passed.status_code == 302
    assert passed["Location"] == auth.get_absolute_url()
    [message] = _messages(passed)
    assert message.startswith("Test passed: GET /me answered 200 in ")
    assert message.endswith("Status: Active.")
    assert TEST_PASSED.startswith("Test passed:")
    httpserver.expect_oneshot_request("/api/me").respond_with_json({"error": "bad"}, status=401)
    refused = client.post(url)
    # (the first message was not displayed yet, so it is still queued)
    assert _messages(refused)[-1] == TEST_REFUSED.format(
        method="GET", path="/me", status=401, label="Revoked"
    )
    auth.refresh_from_db()
    assert auth.status == AuthStatus.REVOKED
    page = client.get(auth.get_absolute_url()).content.decode()
    assert 'data-status="revoked"' in page
    assert 'id="reconnect"' in page
    _assert_no_secret(page.encode())


def test_test_button_without_a_test_request_says_so(actors, client_for, token_service):  # type: ignore[no-untyped-def]
    from httpclient.health import NO_TEST_REQUEST
    from httpclient.views_auth_test import TEST_NOT_RUN

    auth = _token_auth(actors.owner_m, token_service)
    response = client_for(actors.owner).post(_url(actors.org_a, str(auth.public_id), "test"))
    assert _messages(response) == [TEST_NOT_RUN.format(message=NO_TEST_REQUEST)]
    auth.refresh_from_db()
    assert auth.status == AuthStatus.ACTIVE
