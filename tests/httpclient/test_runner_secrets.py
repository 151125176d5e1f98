"""Secrets that show up where the redactor did not look: a query parameter's name."""

from __future__ import annotations

import json

import pytest
from django.core import serializers

from httpclient.models import CallLog
from httpclient.redaction import MASK, Redactor
from httpclient.runner import Call, execute
from tests.httpclient.conftest import make_auth, make_service

pytestmark = pytest.mark.django_db

NAME_SECRET = "tok-SECRET-1234"


def test_a_secret_used_as_a_query_name_is_masked_everywhere(actors, loopback, httpserver) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/x").respond_with_json({"ok": True})
    service = make_service(actors.member_m, base_url=httpserver.url_for("/"), name="Names")
    auth = make_auth(actors.member_m, service, {"token": NAME_SECRET})
    result = execute(Call(membership=actors.member_m, service=service.public_id,
                          authentication=auth.public_id, path=f"/x?{NAME_SECRET}",
                          query=[[NAME_SECRET, "v"], ["page", "2"]]))  # fmt: skip
    assert result.status == 200, result.error
    sent = httpserver.log[-1][0]
    assert sent.query_string.decode().startswith(f"{NAME_SECRET}=&{NAME_SECRET}=v")  # it went out
    from httpclient.api import result_payload

    row = CallLog.objects.get(public_id=result.call_id)
    texts = {
        "result": json.dumps(result_payload(result), default=str),
        "curl": result.curl,
        "row": serializers.serialize("json", [row]),
    }
    for where, text in texts.items():
        assert NAME_SECRET not in text, where
    assert "page=2" in result.url and "page=2" in result.curl  # the rest is still readable
    assert result.url.endswith(f"/x?{MASK}={MASK}&{MASK}={MASK}&page=2")


@pytest.mark.parametrize(
    "url",
    [
        f"https://api.example/x?{NAME_SECRET}=",
        f"https://api.example/x?{NAME_SECRET}=1",
        f"https://api.example/x?{NAME_SECRET}={NAME_SECRET}",
        "https://api.example/x?tok%2dSECRET%2d1234=1",  # an encoding the masked forms lack
        f"https://api.example/x?a={NAME_SECRET.replace('-', '%2d')}",
    ],
)
def test_url_masks_secret_query_names(url: str) -> None:
    shown = Redactor({"token": NAME_SECRET}).url(url)
    assert "SECRET" not in shown, shown


def test_query_pair_and_header_names_are_masked() -> None:
    r = Redactor({"token": NAME_SECRET})
    assert r.query_pair(NAME_SECRET, "x") == (MASK, MASK)
    assert r.query_pair(NAME_SECRET, NAME_SECRET) == (MASK, MASK)
    assert r.headers([(f"X-{NAME_SECRET}", "1")]) == [[f"X-{MASK}", MASK]]
