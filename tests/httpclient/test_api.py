"""The calls API: POST /calls, GET /calls (CONTRACT.md), errors in one shape, rate limited."""

from __future__ import annotations

import json
from typing import Any

import pytest

from httpclient.models import CallLog
from httpclient.runner import types as T
from tests.httpclient.conftest import SECRET_TOKEN, make_auth, make_service

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(actors, client):  # type: ignore[no-untyped-def]
    from workspaces.services import api_key_create

    _, key = api_key_create(membership=actors.member_m)

    class Api:
        def post(self, path: str, body: Any, key: str = key):  # type: ignore[no-untyped-def]
            return client.post(f"/api/v1{path}", data=json.dumps(body),
                               content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")  # fmt: skip

        def get(self, path: str, key: str = key):  # type: ignore[no-untyped-def]
            return client.get(f"/api/v1{path}", HTTP_AUTHORIZATION=f"Bearer {key}")

    return Api()


@pytest.fixture
def target(actors, loopback, httpserver):  # type: ignore[no-untyped-def]
    service = make_service(actors.member_m, base_url=httpserver.url_for("/"), name="Target")
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    return service, auth


def test_post_calls_runs_the_call(
    api, target, httpserver, settings, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    settings.API_RATE_LIMIT_PER_MINUTE = 0  # the limiter's cache queries are not the runner's
    service, auth = target
    httpserver.expect_request("/items", query_string="a=1&a=2&b=x",
                              headers={"Authorization": f"Bearer {SECRET_TOKEN}"},
                              method="POST", json={"n": 1}).respond_with_json({"created": True}, status=201)  # fmt: skip
    body = {"service": str(service.public_id), "authentication": str(auth.public_id),
            "method": "post", "path": "/items", "query": [["a", "1"], ["a", 2], ["b", "x"]],
            "body_type": "json", "body": {"n": 1}}  # fmt: skip
    api.post("/calls", body)  # warm the key's last_used_at and the authentication's use mark
    with django_assert_max_num_queries(4):  # API key; service, authentication, CallLog insert
        response = api.post("/calls", body)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == 201 and data["body"] == {"created": True}
    assert data["headers"]["content-type"] == "application/json"
    assert data["attempts"] == 1 and data["body_kind"] == "json"
    assert data["url"].endswith("/items?a=1&a=2&b=x")
    assert SECRET_TOKEN not in response.content.decode()
    assert "<TOKEN>" in data["curl"]
    row = CallLog.objects.get(public_id=data["call_id"])
    assert row.source == "api" and row.status == 201


def test_call_payloads_are_what_the_documented_schemas_render(
    api, target, httpserver, settings
) -> None:  # type: ignore[no-untyped-def]
    """POST /calls writes its JSON itself (no second validation pass): every shape it answers
    must be exactly what the OpenAPI schemas (CallOut, CallErrorOut) would have rendered."""
    from httpclient.api import CallErrorOut, CallOut

    settings.HTTPCLIENT_BACKOFF_SECONDS = 0.01
    service, auth = target
    ids = {"service": str(service.public_id), "authentication": str(auth.public_id)}
    httpserver.expect_ordered_request("/busy").respond_with_data(
        "", status=429, headers={"Retry-After": "0"}
    )
    httpserver.expect_ordered_request("/busy").respond_with_json({"ok": [1, 2.5, None]})
    httpserver.expect_request("/old").respond_with_data(
        "", status=302, headers={"Location": "/png"}
    )
    httpserver.expect_request("/png").respond_with_data(
        b"\x89PNG\x00\xff", content_type="image/png"
    )
    httpserver.expect_request("/text").respond_with_data("plain words", content_type="text/plain")
    answers = [
        api.post("/calls", {**ids, "path": "/busy", "headers": {"X-A": "1"}}),  # a retry, JSON
        api.post("/calls", {**ids, "path": "/old"}),  # a redirect, a binary body
        api.post("/calls", {**ids, "path": "/text", "method": "HEAD"}),  # empty
        api.post(
            "/calls",
            {
                **ids,
                "path": "/text",
                "body_type": "raw",
                "method": "POST",
                "body": "x",
                "content_type": "text/plain",
            },
        ),  # fmt: skip
    ]
    kinds = set()
    for response in answers:
        assert response.status_code == 200, response.content
        data = json.loads(response.content)
        assert CallOut.model_validate(data).model_dump(mode="json") == data
        kinds.add(data["body_kind"])
    assert kinds == {"json", "binary", "empty", "text"}
    assert answers[0].json()["retries"] and answers[1].json()["redirects"]
    errors = [
        api.post("/calls", {**ids, "body_type": "json", "body": "{nope", "method": "POST"}),
        api.post("/calls", {"service": str(service.public_id), "authentication": "nope"}),
    ]
    for response, status in zip(errors, (422, 404), strict=True):
        assert (
            response.status_code == status
            and response["Content-Type"] == "application/json; charset=utf-8"
        )
        data = json.loads(response.content)
        assert CallErrorOut.model_validate(data).model_dump(mode="json") == data


def test_bad_input_is_422_in_the_error_shape_with_a_call_id(api, target) -> None:  # type: ignore[no-untyped-def]
    service, auth = target
    response = api.post("/calls", {"service": str(service.public_id),
                                   "authentication": str(auth.public_id), "method": "POST",
                                   "body_type": "json", "body": "{nope"})  # fmt: skip
    assert response.status_code == 422
    data = response.json()
    assert data["detail"].startswith("The body is not valid JSON:")
    assert data["errors"] == {"body": [data["detail"]]}
    assert CallLog.objects.filter(public_id=data["call_id"], error_kind="invalid").exists()
    schema = api.post("/calls", {"method": "GET"})  # no service at all: the schema says so
    assert schema.status_code == 422 and "service" in schema.json()["errors"]
    extra = api.post("/calls", {"service": str(service.public_id), "nonsense": 1})
    assert extra.status_code == 422


def test_other_orgs_service_is_404_and_refused_destination_422(
    api, target, actors, httpserver
) -> None:  # type: ignore[no-untyped-def]
    b_service = make_service(actors.outsider_m, base_url=httpserver.url_for("/"), name="B only")
    response = api.post("/calls", {"service": str(b_service.public_id), "path": "/"})
    assert response.status_code == 404 and response.json()["detail"] == T.SERVICE_NOT_FOUND
    assert api.post("/calls", {"service": "not-a-uuid"}).status_code == 404
    service, auth = target
    httpserver.expect_request("/meta").respond_with_data(
        "", status=307, headers={"Location": "http://[::ffff:169.254.169.254]/"}
    )
    refused = api.post("/calls", {"service": str(service.public_id),
                                  "authentication": str(auth.public_id), "path": "/meta"})  # fmt: skip
    assert refused.status_code == 422
    assert (
        refused.json()["error_kind"] == "refused" and "169.254.169.254" in refused.json()["detail"]
    )


def test_upstream_failure_is_502(api, target, actors) -> None:  # type: ignore[no-untyped-def]
    dead = make_service(actors.member_m, base_url="http://127.0.0.1:9", name="Dead")
    dead_auth = make_auth(actors.member_m, dead, {"token": SECRET_TOKEN}, name="d")
    response = api.post("/calls", {"service": str(dead.public_id),
                                   "authentication": str(dead_auth.public_id), "path": "/"})  # fmt: skip
    assert response.status_code == 502 and response.json()["error_kind"] == "connect"


def test_multipart_files_through_the_api(api, target, httpserver) -> None:  # type: ignore[no-untyped-def]
    service, auth = target
    httpserver.expect_request("/up", method="POST").respond_with_data("ok")
    response = api.post("/calls", {
        "service": str(service.public_id), "authentication": str(auth.public_id),
        "method": "POST", "path": "/up", "body_type": "multipart", "body": {"t": "1"},
        "files": [{"field": "f", "filename": "a.txt", "content_base64": "aGVsbG8="}]})  # fmt: skip
    assert response.status_code == 200, response.content
    sent = httpserver.log[-1][0]
    assert sent.files["f"].read() == b"hello" and sent.form["t"] == "1"
    bad = api.post("/calls", {"service": str(service.public_id), "body_type": "multipart",
                              "files": [{"field": "f", "filename": "a", "content_base64": "%%"}]})  # fmt: skip
    assert bad.status_code == 422 and "files.0.content_base64" in bad.json()["errors"]


def test_get_calls_lists_only_the_callers_own_recent_calls(
    api, target, actors, httpserver, settings, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    from workspaces.services import api_key_create

    service, auth = target
    httpserver.expect_request("/p").respond_with_json({})
    for n in range(3):
        api.post("/calls", {"service": str(service.public_id), "authentication": str(auth.public_id),
                            "path": "/p", "query": {"access_token": SECRET_TOKEN, "n": str(n)}})  # fmt: skip
    _, admin_key = api_key_create(membership=actors.admin_m)
    api.post("/calls", {"service": str(service.public_id), "path": "/p"}, key=admin_key)
    settings.API_RATE_LIMIT_PER_MINUTE = 0
    with django_assert_max_num_queries(2):  # API key; the calls with their service/auth joined
        response = api.get("/calls?limit=2")
    assert response.status_code == 200
    calls = response.json()
    assert [c["url"].rsplit("n=", 1)[1] for c in calls] == ["2", "1"]  # newest first
    assert all(c["service"] == str(service.public_id) for c in calls)
    assert SECRET_TOKEN not in response.content.decode()
    assert len(api.get("/calls?limit=100").json()) == 3  # the admin's call is not listed
    detail = api.get(f"/calls/{calls[0]['call_id']}")
    assert detail.status_code == 200 and SECRET_TOKEN not in detail.content.decode()
    assert api.get(f"/calls/{calls[0]['call_id']}", key=admin_key).status_code == 404
    assert api.get("/calls?limit=0").status_code == 422
    outsider_key = api_key_create(membership=actors.outsider_m)[1]
    assert api.get("/calls", key=outsider_key).json() == []


def test_rate_limit_gives_429_with_retry_after(api, settings) -> None:  # type: ignore[no-untyped-def]
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    assert api.get("/calls").status_code == 200
    assert api.get("/calls").status_code == 200
    limited = api.get("/calls")
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited.json()["detail"].startswith("Rate limit exceeded")


@pytest.mark.redis
def test_rate_limit_in_redis_counts_per_key_in_one_round_trip_with_an_expiry(
    api, actors, settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import os
    import time

    import redis

    from workspaces.api_auth import RateLimited, _check_rate
    from workspaces.services import api_key_authenticate, api_key_create

    url = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs a real Redis: set TEST_REDIS_URL")
    settings.REDIS_URL = url
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    one, two = (api_key_create(membership=actors.member_m)[1] for _ in range(2))
    if time.time() % 60 > 55:  # all of it inside one minute's window
        time.sleep(6)
    assert [api.get("/calls", key=one).status_code for _ in range(3)] == [200, 200, 429]
    assert api.get("/calls", key=two).status_code == 200  # another key, its own counter
    client = redis.Redis.from_url(url)
    window = int(time.time() // 60)
    buckets = [f"traysvc:ratelimit:{api_key_authenticate(k).prefix}:{window}" for k in (one, two)]
    assert [int(client.get(b)) for b in buckets] == [3, 1]
    assert all(0 < client.ttl(b) <= 120 for b in buckets)
    trips = {"n": 0}
    real = redis.client.Pipeline.execute

    def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        trips["n"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", counted)
    with pytest.raises(RateLimited):
        _check_rate(api_key_authenticate(one).prefix)
    assert trips["n"] == 1


def test_rate_limit_is_skipped_with_a_warning_when_redis_does_not_answer(
    api, settings, caplog, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    import workspaces.api_auth as api_auth

    monkeypatch.setattr(api_auth, "_redis_down_until", 0.0)
    tries = {"n": 0}
    real = api_auth._count_in_redis

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        tries["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(api_auth, "_count_in_redis", counted)
    with caplog.at_level("WARNING", logger="workspaces.api"):
        assert api.get("/calls").status_code == 200
        assert api.get("/calls").status_code == 200
    assert "API rate limit not applied for 30 s: Redis did not answer" in caplog.text
    assert tries["n"] == 1  # the second request did not wait on Redis again
    monkeypatch.setattr(api_auth, "_redis_down_until", 0.0)  # the back-off is over
    assert api.get("/calls").status_code == 200 and tries["n"] == 2


def test_openapi_documents_calls_with_examples(client) -> None:  # type: ignore[no-untyped-def]
    schema = client.get("/api/v1/openapi.json").json()
    post = schema["paths"]["/api/v1/calls"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    assert {"get", "json", "multipart", "pages"} <= set(examples)
    assert "example" in post["responses"]["200"]["content"]["application/json"]
    assert {"200", "404", "422", "502", "504"} <= set(post["responses"])
    assert "get" in schema["paths"]["/api/v1/calls"]
