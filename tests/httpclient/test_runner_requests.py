"""Requests as the runner builds them, checked by real loopback servers (httpbin, httpserver)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.core import serializers

from httpclient.models import CallLog
from httpclient.runner import Call, UploadedFile, execute
from tests.httpclient.conftest import SECRET_PASSWORD, SECRET_TOKEN, make_auth, make_service

pytestmark = pytest.mark.django_db


def assert_no_secret(result: Any, *secrets: str) -> None:
    """Neither the result (as the API would serialise it) nor its CallLog row holds a secret."""
    from httpclient.api import result_payload

    row = CallLog.objects.get(public_id=result.call_id)
    texts = [
        json.dumps(result_payload(result), default=str),
        result.error,
        serializers.serialize("json", [row]),
    ]
    for secret in secrets:
        for text in texts:
            assert secret not in text


@pytest.fixture
def bin_service(actors, loopback, httpbin_url):  # type: ignore[no-untyped-def]
    service = make_service(actors.member_m, base_url=httpbin_url, name="httpbin")
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    return service, auth


def run(actors, service, auth, **kw: Any):  # type: ignore[no-untyped-def]
    return execute(Call(membership=actors.member_m, service=service.public_id,
                        authentication=auth.public_id if auth else None, **kw))  # fmt: skip


def test_query_pairs_keep_their_order_and_repeats(actors, bin_service) -> None:  # type: ignore[no-untyped-def]
    service, auth = bin_service
    result = run(actors, service, auth, path="/anything/q?first=0",
                 query=[("b", "2"), ("a", "1"), ("b", "3"), ("sp ace", "x&y=z")])  # fmt: skip
    assert result.status == 200, result.error
    assert result.body["url"].endswith("/anything/q?first=0&b=2&a=1&b=3&sp%20ace=x%26y%3Dz")
    assert result.body["args"] == {"first": "0", "b": ["2", "3"], "a": "1", "sp ace": "x&y=z"}


def test_json_body_from_text_and_from_an_object(actors, bin_service) -> None:  # type: ignore[no-untyped-def]
    service, auth = bin_service
    text = run(actors, service, auth, method="POST", path="/anything", body_type="json",
               body='{"n": 1, "list": [true, null]}')  # fmt: skip
    assert text.body["json"] == {"n": 1, "list": [True, None]}
    assert text.body["headers"]["Content-Type"] == "application/json"
    obj = run(actors, service, auth, method="PUT", path="/anything", body_type="json",
              body={"ü": "ß"}, headers={"Content-Type": "application/vnd.api+json"})  # fmt: skip
    assert obj.body["json"] == {"ü": "ß"}
    assert obj.body["headers"]["Content-Type"] == "application/vnd.api+json"
    assert obj.body["method"] == "PUT"


def test_form_body(actors, bin_service) -> None:  # type: ignore[no-untyped-def]
    service, auth = bin_service
    result = run(actors, service, auth, method="POST", path="/post", body_type="form",
                 body=[("a", "1"), ("a", "2"), ("b", "x y")])  # fmt: skip
    assert result.body["form"] == {"a": ["1", "2"], "b": "x y"}
    assert result.body["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_multipart_body_with_a_file_and_fields(actors, bin_service) -> None:  # type: ignore[no-untyped-def]
    service, auth = bin_service
    upload = UploadedFile("doc", 'we"ird.txt', b"file bytes\x00\x01", "application/octet-stream")
    result = run(actors, service, auth, method="POST", path="/post", body_type="multipart",
                 body={"title": "hello"}, files=[upload])  # fmt: skip
    assert result.status == 200, result.error
    assert result.body["form"] == {"title": "hello"}
    assert "doc" in result.body["files"]
    assert result.body["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert 'doc=@we"ird.txt (12 bytes)' in result.request.body


def test_multipart_without_files_is_still_multipart(actors, bin_service) -> None:  # type: ignore[no-untyped-def]
    service, auth = bin_service
    result = run(actors, service, auth, method="POST", path="/post", body_type="multipart",
                 body=[("only", "field")])  # fmt: skip
    assert result.body["form"] == {"only": "field"}
    assert result.body["headers"]["Content-Type"].startswith("multipart/form-data")


def test_raw_body_with_its_content_type(actors, bin_service) -> None:  # type: ignore[no-untyped-def]
    service, auth = bin_service
    result = run(actors, service, auth, method="PATCH", path="/anything", body_type="raw",
                 body="<a>x</a>", content_type="application/xml")  # fmt: skip
    assert result.body["data"] == "<a>x</a>"
    assert result.body["headers"]["Content-Type"] == "application/xml"


def test_no_body_sends_none(actors, bin_service) -> None:  # type: ignore[no-untyped-def]
    service, auth = bin_service
    result = run(actors, service, auth, method="DELETE", path="/anything", body="ignored")
    assert result.body["data"] == "" and "Content-Length" not in result.body["headers"]


def test_response_kinds_text_binary_head(actors, bin_service) -> None:  # type: ignore[no-untyped-def]
    service, auth = bin_service
    html = run(actors, service, auth, path="/html")
    assert html.body_kind == "text" and "Herman Melville" in html.body
    png = run(actors, service, auth, path="/image/png")
    assert png.body_kind == "binary" and png.body is None
    assert png.body_base64.startswith("iVBORw0KGgo")  # base64 of the PNG signature
    head = run(actors, service, auth, method="HEAD", path="/get")
    assert head.status == 200 and head.body_kind == "empty"


def test_echoed_token_is_masked_in_body_result_log_and_curl(actors, bin_service) -> None:  # type: ignore[no-untyped-def]
    service, auth = bin_service
    result = run(actors, service, auth, path="/headers")
    assert result.body["headers"]["Authorization"] == "Bearer [REDACTED]"
    assert "Authorization: Bearer <TOKEN>" in result.curl
    assert_no_secret(result, SECRET_TOKEN)


def test_an_absolute_url_on_the_services_own_host_is_allowed(
    actors, bin_service, httpbin_url
) -> None:  # type: ignore[no-untyped-def]
    service, auth = bin_service
    assert run(actors, service, auth, path=f"{httpbin_url}/get").status == 200
    other = run(actors, service, auth, path="http://localhost:1/get")
    assert other.error_kind == "invalid" and "own host" in other.error


def test_templates_from_extra_params_fill_path_headers_and_query(
    actors, loopback, httpbin_url
) -> None:  # type: ignore[no-untyped-def]
    service = make_service(
        actors.member_m, base_url=httpbin_url, name="Templated",
        extra_params=[{"key": "tenant", "label": "Tenant", "required": True},
                      {"key": "signing", "label": "Signing key", "required": True, "secret": True}],
        default_headers={"X-Tenant": "{{auth.tenant}}"},
    )  # fmt: skip
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN, "tenant": "acme co",
                                               "signing": "sig-SECRET-777"})  # fmt: skip
    result = run(actors, service, auth, path="/anything/{{auth.tenant}}",
                 query=[("sig", "{{auth.signing}}"), ("svc", "{{service.slug}}")])  # fmt: skip
    assert result.status == 200, result.error
    assert result.body["url"].split("?")[0].endswith("/anything/acme%20co")
    assert result.body["headers"]["X-Tenant"] == "acme co"
    assert result.body["args"]["svc"] == "templated"
    assert result.body["args"]["sig"] == "[REDACTED]"  # secret extra param: masked on the way back
    assert_no_secret(result, "sig-SECRET-777", SECRET_TOKEN)


@pytest.mark.parametrize(
    ("params", "expect"),
    [
        ({"placement": "bearer"}, {"headers": {"Authorization": f"Bearer {SECRET_TOKEN}"}}),
        ({"placement": "header", "header_name": "X-Api-Key", "prefix": "Token"},
         {"headers": {"X-Api-Key": f"Token {SECRET_TOKEN}"}}),
        ({"placement": "query", "query_name": "api_key"},
         {"query_string": f"page=1&api_key={SECRET_TOKEN}"}),
        ({"placement": "basic"}, {"headers": {"Authorization": "Basic "
          + __import__("base64").b64encode(f"{SECRET_TOKEN}:".encode()).decode()}}),
    ],
    ids=["bearer", "header", "query", "basic"],
)  # fmt: skip
def test_each_token_placement_reaches_the_server(
    actors, loopback, httpserver, params, expect
) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/me", **expect).respond_with_json({"ok": True})
    service = make_service(actors.member_m, base_url=httpserver.url_for("/"), auth_params=params)
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    result = run(actors, service, auth, path="/me", query={"page": "1"})
    assert result.status == 200, (result.error, result.body)
    assert result.body == {"ok": True}
    assert_no_secret(result, SECRET_TOKEN)


def test_basic_authentication_against_httpbin(actors, loopback, httpbin_url) -> None:  # type: ignore[no-untyped-def]
    service = make_service(actors.member_m, base_url=httpbin_url, auth_method="basic")
    auth = make_auth(actors.member_m, service, {"username": "alice", "password": SECRET_PASSWORD})
    good = run(actors, service, auth, path=f"/basic-auth/alice/{SECRET_PASSWORD}")
    assert good.status == 200 and good.body == {"authenticated": True, "user": "alice"}
    assert "-u 'alice:<PASSWORD>'" in good.curl
    bad = run(actors, service, auth, path="/basic-auth/alice/other")
    assert bad.status == 401
    assert_no_secret(good, SECRET_PASSWORD)


def test_digest_authentication_against_httpbin(actors, loopback, httpbin_url) -> None:  # type: ignore[no-untyped-def]
    service = make_service(actors.member_m, base_url=httpbin_url, auth_method="digest")
    auth = make_auth(actors.member_m, service, {"username": "bob", "password": SECRET_PASSWORD})
    result = run(actors, service, auth, path=f"/digest-auth/auth/bob/{SECRET_PASSWORD}")
    assert result.status == 200, result.error
    assert "--digest -u 'bob:<PASSWORD>'" in result.curl
    assert_no_secret(result, SECRET_PASSWORD)


def test_redirects_followed_or_not(actors, bin_service) -> None:  # type: ignore[no-untyped-def]
    service, auth = bin_service
    followed = run(actors, service, auth, path="/redirect/2")
    assert followed.status == 200 and len(followed.redirects) == 2
    assert followed.url.endswith("/get")
    kept = run(actors, service, auth, path="/redirect/2", follow_redirects=False)
    assert kept.status == 302 and kept.header("location")


def test_execute_loads_in_a_constant_number_of_queries(
    actors, bin_service, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    service, auth = bin_service
    run(actors, service, auth, path="/get")  # the first use also audits "authentication.use"
    with django_assert_max_num_queries(3):  # service, authentication (+ may-use), CallLog insert
        assert run(actors, service, auth, path="/get", query=[("a", "1")] * 20).status == 200
    auth.refresh_from_db()  # its last_used_at is fresh: no second "use" mark within a minute
    with django_assert_max_num_queries(2):  # instances passed: the may-use check, the insert
        result = execute(Call(membership=actors.member_m, service=service, authentication=auth,
                              path="/get"))  # fmt: skip
    assert result.status == 200


def test_calllog_keeps_a_capped_excerpt_the_result_the_whole_body(
    actors, bin_service, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.HTTPCLIENT_CALLLOG_BODY_CHARS = 100
    service, auth = bin_service
    result = run(actors, service, auth, path="/html")
    row = CallLog.objects.get(public_id=result.call_id)
    assert len(result.body) > 1000 and not result.truncated
    assert row.response_body == result.body[:100] and row.response_truncated
    assert row.response_bytes == result.body_bytes


def test_calllog_insert_writes_what_the_orm_would(actors, bin_service) -> None:  # type: ignore[no-untyped-def]
    """record.insert_row adapts values itself (no model instance, no get_db_prep_save): read
    back, its row must equal one the ORM saved from the same values, on SQLite and PostgreSQL."""
    from django.utils import timezone

    from httpclient.runner.record import insert_row

    service, auth = bin_service
    fields = [f for f in CallLog._meta.concrete_fields if not f.primary_key]
    values = {
        "organization_id": actors.org_a.pk, "user_id": actors.member.pk,
        "service_id": service.pk, "authentication_id": auth.pk, "source": "api",
        "method": "POST", "url": "https://api.example.com/x?a=1", "status": 201,
        "elapsed_ms": 12.345, "ttfb_ms": None, "attempts": 2,
        "request_headers": [["Accept", "*/*"], ["X-Ünï", "\u00e9t\u00e9 ☃"]],
        "request_body": '{"a": 1}', "response_headers": [["content-type", "application/json"]],
        "response_body": "", "response_truncated": True, "response_bytes": 2**40,
        "error": "", "error_kind": "", "curl": "curl 'https://api.example.com/x?a=1'",
        "details": {"notes": ["n"], "nested": {"k": [1, 2.5, None, True]}, "empty": {}},
        "created_at": timezone.now(), "updated_at": timezone.now(),
    }  # fmt: skip
    assert {f.attname for f in fields} == {*values, "public_id"}
    fast_id = uuid.uuid4()
    insert_row({**values, "public_id": fast_id})
    orm = CallLog.objects.create(**values)  # auto_now(_add) stamps its own times
    mine, theirs = CallLog.objects.get(public_id=fast_id), CallLog.objects.get(pk=orm.pk)
    stamps = {"public_id", "created_at", "updated_at"}
    for field in fields:
        if field.attname not in stamps:
            assert getattr(mine, field.attname) == getattr(theirs, field.attname), field.attname
    assert (mine.created_at, mine.updated_at) == (values["created_at"], values["updated_at"])
    # and the raw stored text/JSON too, not only what the ORM reads back
    columns = ", ".join(f.column for f in fields if f.attname not in stamps)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM httpclient_calllog WHERE id IN (%s, %s) ORDER BY id",  # noqa: S608
                       [mine.pk, theirs.pk])  # fmt: skip
        first, second = cursor.fetchall()
    assert first == second


def test_preexisting_service_uses_its_connectors_authentication(
    actors, loopback, httpserver
) -> None:  # type: ignore[no-untyped-def]
    from services.authentications import authentication_create

    service = make_service(actors.member_m, base_url=httpserver.url_for("/v1"), name="My Stripe",
                           auth_method="preexisting", auth_params={"connector": "stripe"})  # fmt: skip
    auth = authentication_create(membership=actors.member_m,
                                 workspace=actors.member_m.personal_workspace,
                                 connector="stripe", name="Stripe key",
                                 values={"token": SECRET_TOKEN})  # fmt: skip
    httpserver.expect_request(
        "/v1/balance", headers={"Authorization": f"Bearer {SECRET_TOKEN}"}
    ).respond_with_json({"available": []})
    result = run(actors, service, auth, path="/balance")
    assert result.status == 200 and result.body == {"available": []}, result.error
    assert_no_secret(result, SECRET_TOKEN)
