"""POST /api/v1/calls with every odd input we could think of: each is a 422 (or 404) with words,
or a proper upstream result; never a 500 and never error_kind "internal"."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from httpclient.models import CallLog
from httpclient.runner import types as T
from tests.httpclient.conftest import SECRET_TOKEN, make_auth, make_service

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(actors, client, settings):  # type: ignore[no-untyped-def]
    from workspaces.services import api_key_create

    settings.API_RATE_LIMIT_PER_MINUTE = 0
    _, key = api_key_create(membership=actors.member_m)

    def post(body: Any) -> Any:
        return client.post("/api/v1/calls", data=json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {key}")  # fmt: skip

    return post


@pytest.fixture
def target(actors, loopback, httpserver):  # type: ignore[no-untyped-def]
    httpserver.expect_request(re.compile(".*")).respond_with_json({"ok": True})
    service = make_service(actors.member_m, base_url=httpserver.url_for("/api"), name="Target")
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    return {"service": str(service.public_id), "authentication": str(auth.public_id)}


def _post(api, target, **fields: Any):  # type: ignore[no-untyped-def]
    response = api({**target, **fields})
    assert response.status_code != 500, response.content
    data = response.json()
    assert data.get("error_kind") != "internal", data
    if "call_id" in data and data["call_id"]:
        row = CallLog.objects.get(public_id=data["call_id"])
        assert row.error_kind != "internal"
    return response.status_code, data


# (fields, expected status, the errors key for a 422 from the runner, or None)
CASES: list[tuple[str, dict[str, Any], int, str | None]] = [
    ("header-non-ascii", {"headers": {"X": "é中"}}, 422, "headers"),
    ("header-latin1", {"headers": {"X": "café"}}, 422, "headers"),
    ("header-surrogate", {"headers": {"X": "\ud800"}}, 422, "headers"),
    ("header-name-unicode", {"headers": {"Ä": "x"}}, 422, "headers"),
    ("header-name-space", {"headers": {"A B": "x"}}, 422, "headers"),
    ("header-name-colon", {"headers": {"A:B": "x"}}, 422, "headers"),
    ("header-as-list", {"headers": [["X-A", "1"], ["X-A", "2"]]}, 200, None),
    ("header-list-short", {"headers": [["X-A"]]}, 422, "headers"),
    ("header-list-long", {"headers": [["X-A", "1", "2"]]}, 422, "headers"),
    ("header-tab", {"headers": {"X": "a\tb"}}, 200, None),
    ("header-nul", {"headers": {"X": "a\x00b"}}, 422, "headers"),
    ("raw-surrogate", {"method": "POST", "body_type": "raw", "body": "\ud800"}, 422, "body"),
    ("raw-object", {"method": "POST", "body_type": "raw", "body": {"a": 1}}, 422, "body"),
    ("raw-number", {"method": "POST", "body_type": "raw", "body": 5}, 422, "body"),
    ("raw-unicode", {"method": "POST", "body_type": "raw", "body": "é中😀"}, 200, None),
    (
        "raw-ctype-non-ascii",
        {"method": "POST", "body_type": "raw", "content_type": "aé", "body": "x"},
        422,
        "content_type",
    ),  # fmt: skip
    (
        "raw-ctype-crlf",
        {"method": "POST", "body_type": "raw", "content_type": "a\r\nX: 1", "body": "x"},
        422,
        "content_type",
    ),  # fmt: skip
    (
        "form-surrogate-value",
        {"method": "POST", "body_type": "form", "body": {"a": "\udfff"}},
        422,
        "body",
    ),  # fmt: skip
    (
        "form-surrogate-name",
        {"method": "POST", "body_type": "form", "body": [["\ud800", "x"]]},
        422,
        "body",
    ),  # fmt: skip
    (
        "form-surrogate-text",
        {"method": "POST", "body_type": "form", "body": "a=\ud800"},
        422,
        "body",
    ),  # fmt: skip
    ("form-nested", {"method": "POST", "body_type": "form", "body": {"a": {"b": 1}}}, 422, "body"),
    ("form-number", {"method": "POST", "body_type": "form", "body": 7}, 422, "body"),
    (
        "multipart-surrogate",
        {"method": "POST", "body_type": "multipart", "body": {"a": "\ud800"}},
        422,
        "body",
    ),  # fmt: skip
    (
        "multipart-filename-surrogate",
        {
            "method": "POST",
            "body_type": "multipart",
            "files": [{"field": "f", "filename": "\ud800", "content_base64": "aGk="}],
        },
        422,
        "files",
    ),  # fmt: skip
    (
        "json-surrogate",
        {"method": "POST", "body_type": "json", "body": {"a": "\ud800"}},
        422,
        "body",
    ),  # fmt: skip
    (
        "json-text-surrogate",
        {"method": "POST", "body_type": "json", "body": '"\ud800"'},
        422,
        "body",
    ),  # fmt: skip
    ("json-text-nan", {"method": "POST", "body_type": "json", "body": "NaN"}, 422, "body"),
    ("json-unicode", {"method": "POST", "body_type": "json", "body": {"é": "中"}}, 200, None),
    (
        "files-not-multipart",
        {
            "method": "POST",
            "body_type": "json",
            "body": {},
            "files": [{"field": "f", "filename": "a", "content_base64": "aGk="}],
        },
        422,
        "files",
    ),  # fmt: skip
    ("path-space", {"path": "/a b"}, 422, "path"),
    ("path-unicode", {"path": "/é/中"}, 200, None),
    ("path-surrogate", {"path": "/\ud800"}, 422, "path"),
    ("path-dotdot", {"path": "/../../etc/passwd"}, 200, None),
    ("path-double-slash", {"path": "//evil.example/x"}, 200, None),
    ("path-backslash", {"path": "/\\\\evil.example/x"}, 200, None),
    ("path-other-host", {"path": "http://evil.example/x"}, 422, "path"),
    ("path-scheme-relative-url", {"path": "https://evil.example"}, 422, "path"),
    ("path-bad-percent", {"path": "/%zz"}, 200, None),
    ("path-bad-port", {"path": "http://127.0.0.1:99999/x"}, 422, "path"),
    ("path-empty", {"path": ""}, 200, None),
    ("path-query-surrogate", {"path": "/x?a=\ud800"}, 422, "path"),
    ("query-int", {"query": [["a", 1]]}, 200, None),
    ("query-float", {"query": [["a", 1.5]]}, 200, None),
    ("query-bool", {"query": {"a": True}}, 200, None),
    ("query-null", {"query": {"a": None}}, 200, None),
    ("query-object", {"query": {"a": {"b": 1}}}, 422, "query"),
    ("query-list", {"query": {"a": [1, 2]}}, 422, "query"),
    ("query-name-int", {"query": [[1, "x"]]}, 422, "query"),
    ("query-short-pair", {"query": [["a"]]}, 422, "query"),
    ("query-long-pair", {"query": [["a", "b", "c"]]}, 422, "query"),
    ("query-surrogate", {"query": {"a": "\ud800"}}, 422, "query"),
    ("query-unicode", {"query": {"é": "中"}}, 200, None),
    ("timeout-huge", {"timeout": 1e308}, 200, None),
    ("timeout-negative", {"timeout": -5}, 422, "timeout"),
    ("timeout-zero", {"timeout": 0}, 422, "timeout"),
    ("timeout-string", {"timeout": "soon"}, 422, None),
    ("timeout-numeric-string", {"timeout": "5"}, 200, None),
    ("method-lowercase", {"method": "get"}, 200, None),
    ("method-unknown", {"method": "BREW"}, 422, "method"),
    ("method-empty", {"method": ""}, 422, "method"),
    ("method-unicode", {"method": "GÉT"}, 422, "method"),
    ("body-type-unknown", {"body_type": "xml"}, 422, None),
    ("authentication-not-uuid", {"authentication": "nope"}, 404, "authentication"),
    ("service-not-text", {"service": 5}, 422, None),
    ("follow-redirects-string", {"follow_redirects": "maybe"}, 422, None),
]


@pytest.mark.parametrize(("fields", "status", "field"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_odd_input_is_never_internal(api, target, fields, status, field) -> None:  # type: ignore[no-untyped-def]
    got, data = _post(api, target, **fields)
    assert got == status, data
    if status != 200 and field is not None:
        assert list(data["errors"]) == [field], data
        assert data["detail"] == data["errors"][field][0]
        assert data["error_kind"] in ("invalid", "not_found"), data


def test_non_ascii_header_value_has_clear_words(api, target) -> None:  # type: ignore[no-untyped-def]
    _, data = _post(api, target, headers={"X-Name": "é中"})
    assert data["detail"] == T.HEADER_VALUE_NOT_ASCII.format(name="X-Name")


def test_lone_surrogate_body_has_clear_words(api, target) -> None:  # type: ignore[no-untyped-def]
    _, data = _post(api, target, method="POST", body_type="raw", body="ok \ud800")
    assert data["detail"] == T.TEXT_NOT_UNICODE.format(what="The body")


def test_content_type_with_non_ascii_has_clear_words(api, target) -> None:  # type: ignore[no-untyped-def]
    _, data = _post(api, target, method="POST", body_type="raw", content_type="aé", body="x")
    assert data["detail"] == T.HEADER_VALUE_NOT_ASCII.format(name="Content-Type")


def test_files_need_a_multipart_body(api, target) -> None:  # type: ignore[no-untyped-def]
    _, data = _post(api, target, method="POST", body_type="raw", body="x",
                    files=[{"field": "f", "filename": "a", "content_base64": "aGk="}])  # fmt: skip
    assert data["detail"] == T.FILES_NEED_MULTIPART


def test_service_with_non_ascii_default_header_is_422(api, actors, httpserver, loopback) -> None:  # type: ignore[no-untyped-def]
    service = make_service(actors.member_m, base_url=httpserver.url_for("/"), name="Defaults")
    # Written straight to the row: whatever validation the service form does, an old row or an
    # import may hold such a value, and every call through it must still be a clear 422.
    type(service).objects.filter(pk=service.pk).update(default_headers={"X-Team": "Équipe"})
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    got, data = _post(api, {"service": str(service.public_id),
                            "authentication": str(auth.public_id)})  # fmt: skip
    assert got == 422 and list(data["errors"]) == ["default_headers"]
    assert data["detail"] == T.HEADER_VALUE_NOT_ASCII.format(name="X-Team")
    assert httpserver.log == []


def test_refused_input_with_surrogates_is_logged_cleanly(api, target) -> None:  # type: ignore[no-untyped-def]
    got, data = _post(api, target, path="/\ud800", headers={"X\ud800": "v"})
    assert got == 422
    row = CallLog.objects.get(public_id=data["call_id"])
    text = json.dumps(row.details) + row.error + row.url
    assert "\ud800" not in text


def test_console_non_ascii_header_and_content_type_are_422(
    actors, target, client_for, httpserver
) -> None:  # type: ignore[no-untyped-def]
    from html import escape

    member = client_for(actors.member)
    base = {"service": target["service"], "authentication": target["authentication"],
            "method": "POST", "path": "/x", "follow_redirects": "on"}  # fmt: skip
    header = member.post("/o/org-a/console/", {**base, "body_type": "none",
                                               "header_name": ["X-Name"], "header_value": ["é中"]})  # fmt: skip
    assert header.status_code == 422
    assert escape(T.HEADER_VALUE_NOT_ASCII.format(name="X-Name")) in header.content.decode()
    ctype = member.post("/o/org-a/console/", {**base, "body_type": "raw", "body": "x",
                                              "content_type": "text/é"})  # fmt: skip
    assert ctype.status_code == 422
    assert escape(T.HEADER_VALUE_NOT_ASCII.format(name="Content-Type")) in ctype.content.decode()
    assert httpserver.log == []
    assert not CallLog.objects.filter(error_kind="internal").exists()


def test_upstream_json_with_lone_surrogates_is_a_result(
    api, actors, loopback, httpserver, client_for
) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/odd").respond_with_data(
        b'{"name": "\\ud800 half"}', content_type="application/json"
    )
    service = make_service(actors.member_m, base_url=httpserver.url_for("/"), name="Odd")
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    ids = {"service": str(service.public_id), "authentication": str(auth.public_id)}
    got, data = _post(api, ids, path="/odd")
    assert got == 200 and data["body"] == {"name": "\ufffd half"}
    assert CallLog.objects.get(public_id=data["call_id"]).response_body == '{"name": "\ufffd half"}'
    page = client_for(actors.member).post("/o/org-a/console/", {**ids, "method": "GET",
                                          "path": "/odd", "body_type": "none"})  # fmt: skip
    assert page.status_code == 200 and "\ufffd half" in page.content.decode()


def test_a_credential_httpx_cannot_encode_is_a_422(api, actors, loopback, httpserver) -> None:  # type: ignore[no-untyped-def]
    service = make_service(actors.member_m, base_url=httpserver.url_for("/"), name="Prefix",
                           auth_params={"placement": "header", "header_name": "X-Key",
                                        "prefix": "Clé"})  # fmt: skip
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    got, data = _post(api, {"service": str(service.public_id),
                            "authentication": str(auth.public_id)})  # fmt: skip
    assert (got, data["detail"], data["error_kind"]) == (422, T.AUTH_NOT_ENCODABLE, "auth")
    assert httpserver.log == []


@pytest.mark.parametrize(
    "path,body",
    [
        (
            "/api/v1/services",
            {"name": "a\x00b", "base_url": "https://x.example", "auth_method": "none"},
        ),
        (
            "/api/v1/calls",
            {"service": "00000000-0000-0000-0000-000000000000", "method": "GET", "path": "/\x00"},
        ),
        ("/api/v1/authentications", {"service": "x", "name": "n", "values": {"token": "a\x00"}}),
    ],
)
def test_nul_characters_in_json_are_a_422_not_a_database_error(actors, client, path, body) -> None:  # type: ignore[no-untyped-def]
    from traysvc.api import NUL_IN_BODY
    from workspaces.services import api_key_create

    _, key = api_key_create(membership=actors.member_m)
    response = client.post(path, data=json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {key}")  # fmt: skip
    assert response.status_code == 422, response.content
    assert response.json()["detail"] == NUL_IN_BODY
