"""The redactor masks credentials wherever they appear, and nothing else of note."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from httpclient.redaction import MASK, Redactor, is_sensitive_name

SECRET = "s3cr3t-Token/with+chars"


@pytest.mark.parametrize(
    "name",
    ["Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-API-Key", "api_key",
     "access_token", "accessToken", "client_secret", "X-Auth-Token", "signature", "code",
     "password", "sessionid"],
)  # fmt: skip
def test_credential_names_are_sensitive(name: str) -> None:
    assert is_sensitive_name(name)


@pytest.mark.parametrize(
    "name", ["Accept", "Content-Type", "page", "per_page", "q", "X-Request-Id"]
)
def test_ordinary_names_are_not(name: str) -> None:
    assert not is_sensitive_name(name)


def test_sensitive_headers_keep_their_scheme_but_not_the_value() -> None:
    r = Redactor()
    shown = r.headers([("Authorization", "Bearer abc.def"), ("Cookie", "a=b"), ("Accept", "x")])
    assert shown == [["Authorization", f"Bearer {MASK}"], ["Cookie", MASK], ["Accept", "x"]]


def test_any_header_equal_to_a_secret_is_masked_whatever_its_name() -> None:
    r = Redactor({"token": SECRET})
    assert r.header_value("X-Custom", SECRET) == MASK
    assert r.header_value("X-Custom", f"prefix {SECRET}") == f"prefix {MASK}"


def test_urls_lose_token_params_and_secrets_in_any_encoding() -> None:
    r = Redactor({"token": SECRET})
    url = f"https://u:p@api.example/v1/{quote(SECRET, safe='')}/x?a=1&api_key=zzz&b={quote(SECRET)}&a=2"
    shown = r.url(url)
    assert SECRET not in shown and quote(SECRET, safe="") not in shown and "zzz" not in shown
    assert "u:p@" not in shown
    assert shown.startswith("https://api.example/v1/")
    assert "a=1&api_key=" in shown and shown.endswith("&a=2")  # order kept


def test_bodies_and_json_are_masked() -> None:
    r = Redactor({"token": SECRET})
    assert SECRET.encode() not in r.bytes(f'{{"t": "{SECRET}"}}'.encode())
    assert r.json({"k": [SECRET, {"x": f"Bearer {SECRET}"}]}) == {
        "k": [MASK, {"x": f"Bearer {MASK}"}]
    }


def test_short_secrets_only_mask_whole_values() -> None:
    r = Redactor({"pin": "123"})
    assert r.text("order 1234") == "order 1234"
    assert r.query_pair("p", "123") == ("p", MASK)


def test_placeholders_name_the_secret() -> None:
    r = Redactor({"token": SECRET}).as_placeholders()
    assert r.header_value("Authorization", f"Bearer {SECRET}") == "Bearer <TOKEN>"
    assert (
        r.url(f"https://h/x?access_token={quote(SECRET, safe='')}")
        == "https://h/x?access_token=<TOKEN>"
    )


def test_a_refreshed_token_joins_the_old_one() -> None:
    r = Redactor({"access_token": "old-token-1"}).with_secrets(["new-token-2"])
    assert r.text("old-token-1 new-token-2") == f"{MASK} {MASK}"
