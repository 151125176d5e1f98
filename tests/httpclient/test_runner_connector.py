"""A pre-existing service applies its connector's method with the connector's params (which have
no client id: that is each service's registration) to an authentication of that connector."""

from __future__ import annotations

import pytest

from httpclient.runner import Call, execute
from services.models import Authentication
from tests.httpclient.conftest import make_service
from tests.httpclient.test_runner_requests import assert_no_secret

pytestmark = pytest.mark.django_db

ACCESS = "gho_connector-ACCESS-token-42"


def connector_grant(membership, connector: str, access: str) -> Authentication:  # type: ignore[no-untyped-def]
    """An OAuth2 grant of a catalog connector, its result stored directly (no provider here)."""
    auth = Authentication(
        organization=membership.organization,
        workspace=membership.personal_workspace,
        connector=connector,
        name="GitHub grant",
        created_by=membership.user,
    )
    auth.set_secrets({"access_token": access, "refresh_token": "connector-REFRESH-1"})
    auth.save()
    return auth


def test_preexisting_service_calls_with_an_oauth2_connector_grant(
    actors, loopback, httpserver
) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/user", headers={"Authorization": f"Bearer {ACCESS}"}
                              ).respond_with_json({"login": "octocat"})  # fmt: skip
    service = make_service(actors.member_m, base_url=httpserver.url_for("/"),
                           auth_method="preexisting", auth_params={"connector": "github"},
                           name="Our GitHub")  # fmt: skip
    auth = connector_grant(actors.member_m, "github", ACCESS)
    result = execute(Call(membership=actors.member_m, service=service.public_id,
                          authentication=auth.public_id, path="/user"))  # fmt: skip
    assert result.error == "" and result.status == 200, (result.error, result.error_kind)
    assert result.body == {"login": "octocat"}
    assert result.request is not None
    assert ["Authorization", "Bearer [REDACTED]"] in result.request.headers
    assert_no_secret(result, ACCESS, "connector-REFRESH-1")


def test_a_grant_of_another_connector_is_refused(actors, loopback, httpserver) -> None:  # type: ignore[no-untyped-def]
    from httpclient.runner import types as T

    service = make_service(actors.member_m, base_url=httpserver.url_for("/"),
                           auth_method="preexisting", auth_params={"connector": "github"},
                           name="Our GitHub")  # fmt: skip
    auth = connector_grant(actors.member_m, "slack", ACCESS)
    result = execute(Call(membership=actors.member_m, service=service.public_id,
                          authentication=auth.public_id, path="/user"))  # fmt: skip
    assert result.error == T.AUTHENTICATION_OTHER_SERVICE.format(service="Our GitHub")
    assert httpserver.log == []


def test_an_expired_connector_grant_answers_with_the_401(actors, loopback, httpserver) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/user").respond_with_data("expired", status=401)
    service = make_service(actors.member_m, base_url=httpserver.url_for("/"),
                           auth_method="preexisting", auth_params={"connector": "github"},
                           name="Our GitHub")  # fmt: skip
    auth = connector_grant(actors.member_m, "github", ACCESS)
    result = execute(Call(membership=actors.member_m, service=service.public_id,
                          authentication=auth.public_id, path="/user"))  # fmt: skip
    assert result.status == 401 and result.error_kind == "", (result.error, result.error_kind)
    assert result.notes and result.notes[0].startswith("The access token was refused")
    assert_no_secret(result, ACCESS, "connector-REFRESH-1")
