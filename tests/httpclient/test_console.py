"""The request console: plain form posts, htmx fragments, history, tenancy."""

from __future__ import annotations

import pytest

from httpclient.models import CallLog
from tests.httpclient.conftest import SECRET_TOKEN, make_auth, make_service

pytestmark = pytest.mark.django_db

URL = "/o/org-a/console/"


@pytest.fixture
def setup(actors, loopback, httpserver):  # type: ignore[no-untyped-def]
    service = make_service(
        actors.member_m, base_url=httpserver.url_for("/"), name="Console target",
        endpoints=[{"method": "GET", "path": "/users", "summary": "List users"}],
    )  # fmt: skip
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN}, name="Mine")
    other_auth = make_auth(actors.admin_m, service, {"token": "admin-token-zzz"}, name="Admins")
    return service, auth, other_auth


def form(service, auth, **extra):  # type: ignore[no-untyped-def]
    data = {"service": str(service.public_id), "authentication": str(auth.public_id),
            "method": "GET", "path": "/users", "body_type": "none", "follow_redirects": "on",
            "query_name": ["page", "page", ""], "query_value": ["1", "2", ""],
            "header_name": ["X-Trace", ""], "header_value": ["abc", ""]}  # fmt: skip
    data.update(extra)
    return data


def test_page_lists_services_endpoints_and_only_my_authentications(
    actors, setup, client_for, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    service, auth, other_auth = setup
    member = client_for(actors.member)
    member.get(URL)
    with django_assert_max_num_queries(9):
        page = member.get(URL)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Console target" in html and f'value="{auth.public_id}"' in html
    assert str(other_auth.public_id) not in html  # the admin's personal authentication
    assert f'<datalist id="endpoints-{service.public_id}"><option value="/users">' in html
    assert 'src="/static/js/console.js"' in html and "<script>" not in html


def test_plain_post_runs_the_call_and_shows_the_result(
    actors, setup, client_for, httpserver
) -> None:  # type: ignore[no-untyped-def]
    service, auth, _ = setup
    httpserver.expect_request("/users", query_string="page=1&page=2",
                              headers={"X-Trace": "abc", "Authorization": f"Bearer {SECRET_TOKEN}"}
                              ).respond_with_json({"users": [{"name": "ada"}]})  # fmt: skip
    response = client_for(actors.member).post(URL, form(service, auth))
    html = response.content.decode()
    assert response.status_code == 200
    assert "200 OK" in html and "&quot;ada&quot;" in html  # pretty-printed JSON, escaped
    assert "Copy as curl" in html and "&lt;TOKEN&gt;" in html
    assert SECRET_TOKEN not in html
    assert 'name="query_value" value="2"' in html  # the form keeps what was entered
    row = CallLog.objects.get(user=actors.member)
    assert row.source == "console" and row.status == 200
    assert f"/o/org-a/console/calls/{row.public_id}/" in html  # history links to it


def test_htmx_post_answers_with_the_result_panel_only(
    actors, setup, client_for, httpserver
) -> None:  # type: ignore[no-untyped-def]
    service, auth, _ = setup
    httpserver.expect_request("/users").respond_with_data("plain text", content_type="text/plain")
    response = client_for(actors.member).post(URL, form(service, auth), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="result"')
    assert '<section id="history" aria-labelledby="history-title" hx-swap-oob="true">' in html
    assert "<html" not in html
    assert "plain text" in html


def test_invalid_json_and_crlf_are_422_with_the_reason(actors, setup, client_for) -> None:  # type: ignore[no-untyped-def]
    service, auth, _ = setup
    member = client_for(actors.member)
    bad_json = member.post(URL, form(service, auth, method="POST", body_type="json", body="{x"))
    assert bad_json.status_code == 422 and "The body is not valid JSON" in bad_json.content.decode()
    crlf = member.post(URL, form(service, auth, header_name=["X-A"], header_value=["1\r\nX: y"]))
    assert crlf.status_code == 422
    assert CallLog.objects.filter(user=actors.member, error_kind="invalid").count() == 2


def test_someone_elses_authentication_is_refused(actors, setup, client_for, httpserver) -> None:  # type: ignore[no-untyped-def]
    service, _, other_auth = setup
    response = client_for(actors.member).post(URL, form(service, other_auth))
    assert response.status_code == 422  # not one of the form's choices
    assert "Pick one of the listed options." in response.content.decode()
    assert len(httpserver.log) == 0


def test_multipart_upload_from_the_console(actors, setup, client_for, httpserver) -> None:  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile

    service, auth, _ = setup
    httpserver.expect_request("/upload", method="POST").respond_with_data("stored")
    data = form(service, auth, method="POST", path="/upload", body_type="multipart",
                form_name=["title"], form_value=["report"], file_field_0="attachment",
                file_0=SimpleUploadedFile("r.csv", b"a,b\n1,2\n", content_type="text/csv"))  # fmt: skip
    response = client_for(actors.member).post(URL, data)
    assert response.status_code == 200 and "stored" in response.content.decode()
    sent = httpserver.log[-1][0]
    assert sent.files["attachment"].read() == b"a,b\n1,2\n" and sent.form["title"] == "report"


def test_call_detail_and_reload_are_the_members_own(actors, setup, client_for, httpserver) -> None:  # type: ignore[no-untyped-def]
    service, auth, _ = setup
    httpserver.expect_request("/users").respond_with_json({})
    client_for(actors.member).post(URL, form(service, auth))
    row = CallLog.objects.get(user=actors.member)
    detail = client_for(actors.member).get(f"{URL}calls/{row.public_id}/")
    assert detail.status_code == 200 and SECRET_TOKEN not in detail.content.decode()
    assert "&lt;TOKEN&gt;" in detail.content.decode()
    reload = client_for(actors.member).get(f"{URL}?from={row.public_id}").content.decode()
    assert 'name="query_value" value="2"' in reload and 'value="/users"' in reload
    assert client_for(actors.admin).get(f"{URL}calls/{row.public_id}/").status_code == 404
    assert client_for(actors.outsider).get(f"{URL}calls/{row.public_id}/").status_code == 404
    assert client_for(actors.member).post(f"{URL}calls/{row.public_id}/").status_code == 405


def test_outsider_and_anonymous_see_nothing(actors, setup, client_for, client) -> None:  # type: ignore[no-untyped-def]
    service, auth, _ = setup
    outsider = client_for(actors.outsider)
    assert outsider.get(URL).status_code == 404
    assert outsider.post(URL, form(service, auth)).status_code == 404
    assert client.get(URL).status_code == 302
    assert not CallLog.objects.exists()
