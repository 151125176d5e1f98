"""OAuth through the runner: OAuth1 signatures checked by oauthlib's own server code, and the
OAuth2 401 -> refresh (the shared, locked authentication_refresh) -> retry path."""

from __future__ import annotations

from typing import Any

import pytest
from oauthlib.oauth1 import RequestValidator, ResourceEndpoint
from werkzeug import Request, Response

from httpclient.runner import Call, execute
from services.models import Authentication
from tests.httpclient.conftest import make_auth, make_oauth2_auth, make_service
from tests.httpclient.test_runner_requests import assert_no_secret

pytestmark = pytest.mark.django_db

CONSUMER_KEY = "consumer-key-0123456789"
CONSUMER_SECRET = "consumer-SECRET-abcdef"
TOKEN = "access-token-0123456789"
TOKEN_SECRET = "token-SECRET-fedcba"


class Validator(RequestValidator):
    """Accepts exactly one consumer and one token; nonces are not replay-checked here."""

    enforce_ssl = False
    dummy_client = "dummy-client-000000000"
    dummy_access_token = "dummy-token-0000000000"

    def check_client_key(self, client_key: str) -> bool:
        return True

    def check_access_token(self, request_token: str) -> bool:
        return True

    def check_nonce(self, nonce: str) -> bool:
        return True

    def validate_timestamp_and_nonce(self, *args: Any, **kwargs: Any) -> bool:
        return True

    def validate_client_key(self, client_key: str, request: Any) -> bool:
        return client_key == CONSUMER_KEY

    def validate_access_token(self, client_key: str, token: str, request: Any) -> bool:
        return token == TOKEN

    def validate_realms(self, *args: Any, **kwargs: Any) -> bool:
        return True

    def get_client_secret(self, client_key: str, request: Any) -> str:
        return CONSUMER_SECRET

    def get_access_token_secret(self, client_key: str, token: str, request: Any) -> str:
        return TOKEN_SECRET


def oauth1_check(request: Request) -> Response:
    """The protected resource: 200 only when oauthlib verifies the signature."""
    endpoint = ResourceEndpoint(Validator())
    body = request.get_data(as_text=True) or None
    valid, _ = endpoint.validate_protected_resource_request(
        request.url, http_method=request.method, body=body, headers=dict(request.headers)
    )
    return Response("signed" if valid else "bad signature", status=200 if valid else 401)


@pytest.mark.parametrize("signature_type", ["header", "query"])
def test_oauth1_signature_is_verified_by_oauthlib(
    actors, loopback, httpserver, signature_type
) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/resource").respond_with_handler(oauth1_check)
    service = make_service(
        actors.member_m, base_url=httpserver.url_for("/"), auth_method="oauth1",
        auth_params={"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET,
                     "signature_type": signature_type},
        acknowledge_insecure=True,
    )  # fmt: skip
    auth = make_auth(actors.member_m, service, {"token": TOKEN, "token_secret": TOKEN_SECRET})
    for kw in (
        {"query": [("b", "2"), ("a", "1 x")]},
        {"method": "POST", "body_type": "form", "body": [("status", "hello world"), ("n", "1")]},
        {"method": "PUT", "body_type": "json", "body": {"x": 1}},
    ):
        result = execute(Call(membership=actors.member_m, service=service.public_id,
                              authentication=auth.public_id, path="/resource", **kw))  # fmt: skip
        assert (result.status, result.body) == (200, "signed"), (kw, result.error, result.body)
        assert_no_secret(result, CONSUMER_SECRET, TOKEN_SECRET)
    # A tampered secret does not verify: the check above can fail.
    service.set_secret_params({"consumer_secret": "wrong"})
    service.save()
    bad = execute(Call(membership=actors.member_m, service=service.public_id,
                       authentication=auth.public_id, path="/resource"))  # fmt: skip
    assert bad.status == 401


def oauth2_service(actors, httpserver):  # type: ignore[no-untyped-def]
    return make_service(
        actors.member_m, base_url=httpserver.url_for("/api"), auth_method="oauth2",
        auth_params={"client_id": "cid", "client_secret": "client-SECRET-42",
                     "authorize_url": "https://provider.example/authorize",
                     "token_url": httpserver.url_for("/token"), "grant_type": "authorization_code",
                     "token_endpoint_auth": "body"},
    )  # fmt: skip


def test_401_refreshes_once_and_retries(actors, loopback, httpserver) -> None:  # type: ignore[no-untyped-def]
    service = oauth2_service(actors, httpserver)
    auth = make_oauth2_auth(actors.member_m, service, access="old-ACCESS-1", refresh="REFRESH-1")
    httpserver.expect_request("/api/me", headers={"Authorization": "Bearer old-ACCESS-1"}
                              ).respond_with_data("expired", status=401)  # fmt: skip
    httpserver.expect_request("/token", method="POST").respond_with_json(
        {"access_token": "new-ACCESS-2", "token_type": "Bearer", "expires_in": 3600,
         "refresh_token": "REFRESH-2"}
    )  # fmt: skip
    httpserver.expect_request("/api/me", headers={"Authorization": "Bearer new-ACCESS-2"}
                              ).respond_with_json({"me": "ok"})  # fmt: skip
    result = execute(Call(membership=actors.member_m, service=service.public_id,
                          authentication=auth.public_id, path="/me"))  # fmt: skip
    assert result.status == 200 and result.body == {"me": "ok"}, (result.error, result.notes)
    assert result.attempts == 2
    assert [(r.status, r.reason) for r in result.retries] == [(401, "token refreshed")]
    token_requests = [r for r, _ in httpserver.log if r.path == "/token"]
    assert len(token_requests) == 1 and "REFRESH-1" in token_requests[0].get_data(as_text=True)
    stored = Authentication.objects.get(pk=auth.pk).get_secrets()
    assert stored["access_token"] == "new-ACCESS-2" and stored["refresh_token"] == "REFRESH-2"
    assert_no_secret(result, "old-ACCESS-1", "new-ACCESS-2", "REFRESH-1", "client-SECRET-42")


def test_a_failed_refresh_answers_with_the_401(actors, loopback, httpserver) -> None:  # type: ignore[no-untyped-def]
    service = oauth2_service(actors, httpserver)
    auth = make_oauth2_auth(actors.member_m, service, access="old-ACCESS-1", refresh="REFRESH-1")
    httpserver.expect_request("/api/me").respond_with_data("expired", status=401)
    httpserver.expect_request("/token").respond_with_json({"error": "invalid_grant"}, status=400)
    result = execute(Call(membership=actors.member_m, service=service.public_id,
                          authentication=auth.public_id, path="/me"))  # fmt: skip
    assert result.status == 401 and result.attempts == 1
    assert result.notes and result.notes[0].startswith(
        "The access token was refused and refreshing"
    )
    assert len([r for r, _ in httpserver.log if r.path == "/api/me"]) == 1  # refreshed at most once
    assert_no_secret(result, "old-ACCESS-1", "REFRESH-1", "client-SECRET-42")
