"""``prepare`` for every auth method, checked by what a real loopback server received.

The requests go out on a plain httpx.Client (the app's egress client is not under test here).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from urllib.parse import unquote, urlsplit

import httpbin
import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from oauthlib.oauth1 import RequestValidator, ResourceEndpoint, SignatureOnlyEndpoint
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response
from werkzeug.serving import make_server

from services.auth_methods import AuthApplyError, base, get_method, oauth2, preexisting, soap

# ---- helpers ---------------------------------------------------------------------------------


def send(
    key: str,
    request: httpx.Request,
    params: Mapping[str, object],
    secrets: Mapping[str, str],
    *,
    ack: bool = False,
) -> httpx.Response:
    method = get_method(key)
    model = method.validate_service_params(params, acknowledge_insecure=ack)
    service_secrets = method.split_params(params)[1]
    prepared, auth = method.prepare(request, params=model, secrets={**service_secrets, **secrets})
    with httpx.Client(trust_env=False, timeout=10) as client:
        return client.send(prepared, auth=auth)


def received(httpserver: HTTPServer) -> Request:
    assert len(httpserver.log) == 1
    return httpserver.log[0][0]


@pytest.fixture
def ok_server(httpserver: HTTPServer) -> HTTPServer:
    httpserver.expect_request("/items").respond_with_data("ok")
    return httpserver


# ---- none / token / basic / oauth2 -----------------------------------------------------------


def test_none_sends_the_request_untouched(ok_server: HTTPServer) -> None:
    request = httpx.Request("GET", ok_server.url_for("/items?a=1"), headers={"X-Trace": "t"})
    assert send("none", request, {}, {}).status_code == 200
    got = received(ok_server)
    assert "Authorization" not in got.headers
    assert got.headers["X-Trace"] == "t"
    assert got.query_string == b"a=1"


def test_token_as_bearer(ok_server: HTTPServer) -> None:
    request = httpx.Request("GET", ok_server.url_for("/items"), headers={"Authorization": "old"})
    send("token", request, {"placement": "bearer"}, {"token": "tok-123"})
    assert received(ok_server).headers.get_all("Authorization") == ["Bearer tok-123"]


def test_token_in_custom_header_with_prefix(ok_server: HTTPServer) -> None:
    request = httpx.Request("GET", ok_server.url_for("/items"))
    params = {"placement": "header", "header_name": "X-Api-Key", "prefix": "Token"}
    send("token", request, params, {"token": "tok-123"})
    got = received(ok_server)
    assert got.headers["X-Api-Key"] == "Token tok-123"
    assert "Authorization" not in got.headers


def test_token_in_custom_header_without_prefix(ok_server: HTTPServer) -> None:
    request = httpx.Request("GET", ok_server.url_for("/items"))
    send("token", request, {"placement": "header", "header_name": "X-Key"}, {"token": "t"})
    assert received(ok_server).headers["X-Key"] == "t"


def test_token_query_param_is_appended_keeping_repeated_keys_in_order(
    ok_server: HTTPServer,
) -> None:
    url = ok_server.url_for("/items") + "?b=2&a=1&a=3&api_key=stale&q=x%20y+z"
    request = httpx.Request("GET", url)
    send("token", request, {"placement": "query", "query_name": "api_key"}, {"token": "t/k+1"})
    got = received(ok_server)
    assert got.query_string == b"b=2&a=1&a=3&q=x%20y+z&api_key=t%2Fk%2B1"
    assert got.args.getlist("a") == ["1", "3"]
    assert got.args.getlist("api_key") == ["t/k+1"]
    assert got.args["q"] == "x y z"


def test_token_as_basic_user_name(ok_server: HTTPServer) -> None:
    request = httpx.Request("GET", ok_server.url_for("/items"))
    send("token", request, {"placement": "basic"}, {"token": "sk_live_1"})
    auth = received(ok_server).authorization
    assert auth is not None
    assert (auth.type, auth.username, auth.password) == ("basic", "sk_live_1", "")


def test_basic_sends_base64_of_user_and_password(ok_server: HTTPServer) -> None:
    request = httpx.Request("GET", ok_server.url_for("/items"))
    send("basic", request, {}, {"username": "ann", "password": "pä ss:word"})
    got = received(ok_server)
    expected = base64.b64encode("ann:pä ss:word".encode()).decode()
    assert got.headers["Authorization"] == f"Basic {expected}"
    assert got.authorization.username == "ann"  # type: ignore[union-attr]
    assert got.authorization.password == "pä ss:word"  # type: ignore[union-attr]


OAUTH2 = {
    "client_id": "c",
    "authorize_url": "https://provider.example/authorize",
    "token_url": "https://provider.example/token",
}


@pytest.mark.parametrize(
    ("placement", "check"),
    [
        ({"token_placement": "bearer"}, lambda r: r.headers["Authorization"] == "Bearer at-1"),
        (
            {"token_placement": "header", "header_name": "X-Auth", "prefix": "OAuth"},
            lambda r: r.headers["X-Auth"] == "OAuth at-1" and "Authorization" not in r.headers,
        ),
        (
            {"token_placement": "query", "query_name": "access_token"},
            lambda r: r.query_string == b"page=2&access_token=at-1",
        ),
    ],
)
def test_oauth2_applies_the_access_token_per_placement(
    ok_server: HTTPServer, placement: dict, check: object
) -> None:
    request = httpx.Request("GET", ok_server.url_for("/items") + "?page=2")
    secrets = {"access_token": "at-1", "refresh_token": "rt-1"}
    assert send("oauth2", request, {**OAUTH2, **placement}, secrets).status_code == 200
    assert check(received(ok_server))  # type: ignore[operator]


def test_missing_credentials_are_a_clear_apply_error() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:9/items")
    with pytest.raises(AuthApplyError) as info:
        get_method("token").prepare(request, params={}, secrets={})
    assert str(info.value) == base.MISSING_CREDENTIAL.format(label="token")
    with pytest.raises(AuthApplyError) as info:
        get_method("oauth2").prepare(request, params=OAUTH2, secrets={"refresh_token": "r"})
    assert str(info.value) == oauth2.NO_ACCESS_TOKEN
    with pytest.raises(AuthApplyError) as info:
        get_method("preexisting").prepare(request, params={"connector": "github"}, secrets={})
    assert str(info.value) == preexisting.RESOLVE_CONNECTOR


# ---- digest against httpbin ------------------------------------------------------------------


@pytest.fixture(scope="module")
def httpbin_url() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, httpbin.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


def test_digest_answers_httpbins_challenge(httpbin_url: str) -> None:
    request = httpx.Request("GET", f"{httpbin_url}/digest-auth/auth/user/passwd")
    response = send("digest", request, {}, {"username": "user", "password": "passwd"})
    assert response.status_code == 200
    assert response.json() == {"authenticated": True, "user": "user"}
    assert response.request.headers["Authorization"].startswith("Digest ")


def test_digest_with_a_wrong_password_is_refused(httpbin_url: str) -> None:
    request = httpx.Request("GET", f"{httpbin_url}/digest-auth/auth/user/passwd")
    response = send("digest", request, {}, {"username": "user", "password": "wrong"})
    assert response.status_code == 401


# ---- OAuth 1.0a, verified by oauthlib's own server endpoint ---------------------------------

CONSUMER_KEY = "consumerkey1234567890"
CONSUMER_SECRET = "consumer-secret"
ACCESS_TOKEN = "accesstoken1234567890"
TOKEN_SECRET = "token-secret"


class Validator(RequestValidator):
    """Knows one consumer and one token; remembers nonces like a real provider."""

    enforce_ssl = False
    dummy_client = "dummyclient1234567890"
    dummy_access_token = "dummytoken1234567890"

    def __init__(self, allowed: tuple[str, ...] = ("HMAC-SHA1",)) -> None:
        super().__init__()
        self.allowed = allowed
        self.nonces: set[str] = set()

    @property
    def allowed_signature_methods(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.allowed

    def validate_client_key(self, client_key, request):  # type: ignore[no-untyped-def]
        return client_key == CONSUMER_KEY

    def validate_access_token(self, client_key, token, request):  # type: ignore[no-untyped-def]
        return token == ACCESS_TOKEN

    def validate_timestamp_and_nonce(  # type: ignore[no-untyped-def]
        self, client_key, timestamp, nonce, request, request_token=None, access_token=None
    ):
        if nonce in self.nonces:
            return False
        self.nonces.add(nonce)
        return True

    def validate_realms(self, client_key, token, request, uri=None, realms=None):  # type: ignore[no-untyped-def]
        return True

    def get_client_secret(self, client_key, request):  # type: ignore[no-untyped-def]
        return CONSUMER_SECRET

    def get_access_token_secret(self, client_key, token, request):  # type: ignore[no-untyped-def]
        return TOKEN_SECRET


def raw_uri(request: Request) -> str:
    """The URL exactly as the client sent it: what it signed."""
    return f"http://{request.host}{request.environ['RAW_URI']}"


def oauth_header(request: Request) -> dict[str, str]:
    """The Authorization header's oauth_* params, decoded."""
    pairs = parse_authorization_header(request.headers["Authorization"])
    return {name: unquote(value) for name, value in pairs}


def oauth1_verifier(two_legged: bool = False):  # type: ignore[no-untyped-def]
    validator = Validator()
    endpoint = (SignatureOnlyEndpoint if two_legged else ResourceEndpoint)(validator)

    def handler(request: Request) -> Response:
        body = request.get_data(as_text=True) or None
        headers = dict(request.headers)
        if two_legged:
            valid, _ = endpoint.validate_request(raw_uri(request), request.method, body, headers)
        else:
            valid, _ = endpoint.validate_protected_resource_request(
                raw_uri(request), request.method, body, headers
            )
        return Response("valid" if valid else "invalid", status=200 if valid else 401)

    return handler


def oauth1_params(**overrides: object) -> dict[str, object]:
    return {"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET, **overrides}


THREE_LEGGED = {"token": ACCESS_TOKEN, "token_secret": TOKEN_SECRET}


def test_oauth1_hmac_header_signature_over_query_verifies(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/photos").respond_with_handler(oauth1_verifier())
    url = httpserver.url_for("/photos") + "?size=original&file=vacation.jpg&size=small"
    response = send(
        "oauth1", httpx.Request("GET", url), oauth1_params(realm="Photos"), THREE_LEGGED, ack=True
    )
    assert response.text == "valid"
    got = received(httpserver)
    assert got.headers["Authorization"].startswith('OAuth realm="Photos", oauth_nonce=')
    assert got.query_string == b"size=original&file=vacation.jpg&size=small"


def test_oauth1_signs_the_form_body(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/status", method="POST").respond_with_handler(oauth1_verifier())
    request = httpx.Request(
        "POST",
        httpserver.url_for("/status") + "?include=all",
        data={"status": "Hello Ladies + Gentlemen"},
    )
    response = send("oauth1", request, oauth1_params(), THREE_LEGGED, ack=True)
    assert response.text == "valid"
    assert received(httpserver).form["status"] == "Hello Ladies + Gentlemen"


def test_oauth1_tampered_form_body_fails_verification(httpserver: HTTPServer) -> None:
    """The server really checks the body is signed: change it after signing and it refuses."""
    httpserver.expect_request("/status", method="POST").respond_with_handler(oauth1_verifier())
    method = get_method("oauth1")
    params = method.validate_service_params(oauth1_params(), acknowledge_insecure=True)
    request = httpx.Request("POST", httpserver.url_for("/status"), data={"status": "signed"})
    prepared, _ = method.prepare(
        request, params=params, secrets={"consumer_secret": CONSUMER_SECRET, **THREE_LEGGED}
    )
    tampered = httpx.Request(
        "POST",
        prepared.url,
        headers={"Authorization": prepared.headers["Authorization"]},
        data={"status": "tampered"},
    )
    with httpx.Client(trust_env=False) as client:
        assert client.send(tampered).status_code == 401


def test_oauth1_json_body_gets_a_body_hash(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/items", method="POST").respond_with_handler(oauth1_verifier())
    request = httpx.Request("POST", httpserver.url_for("/items"), json={"name": "x"})
    response = send("oauth1", request, oauth1_params(), THREE_LEGGED, ack=True)
    assert response.text == "valid"
    params = oauth_header(received(httpserver))
    expected = base64.b64encode(hashlib.sha1(b'{"name":"x"}').digest()).decode()  # noqa: S324
    assert params["oauth_body_hash"] == expected


def test_oauth1_query_signature_type_keeps_existing_pairs(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/photos").respond_with_handler(oauth1_verifier())
    url = httpserver.url_for("/photos") + "?b=1&a=2&b=3"
    response = send(
        "oauth1",
        httpx.Request("GET", url),
        oauth1_params(signature_type="query"),
        THREE_LEGGED,
        ack=True,
    )
    assert response.text == "valid"
    got = received(httpserver)
    assert got.query_string.startswith(b"b=1&a=2&b=3&oauth_")
    assert "Authorization" not in got.headers
    assert got.args["oauth_signature_method"] == "HMAC-SHA1"


def test_oauth1_two_legged_without_token(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api").respond_with_handler(oauth1_verifier(two_legged=True))
    response = send(
        "oauth1", httpx.Request("GET", httpserver.url_for("/api")), oauth1_params(), {}, ack=True
    )
    assert response.text == "valid"
    assert "oauth_token=" not in received(httpserver).headers["Authorization"]


def test_oauth1_wrong_secret_is_refused_by_the_server(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/photos").respond_with_handler(oauth1_verifier())
    request = httpx.Request("GET", httpserver.url_for("/photos"))
    response = send(
        "oauth1", request, oauth1_params(consumer_secret="not-it"), THREE_LEGGED, ack=True
    )
    assert response.status_code == 401


def test_oauth1_rsa_sha1_signature_verifies_with_the_public_key(httpserver: HTTPServer) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()

    def handler(request: Request) -> Response:
        uri = raw_uri(request)
        oauth = oauth_header(request)
        collected = oauth_signature.collect_parameters(
            uri_query=urlsplit(uri).query, headers=dict(request.headers)
        )
        base_string = oauth_signature.signature_base_string(
            request.method,
            oauth_signature.base_string_uri(uri),
            oauth_signature.normalize_parameters(collected),
        )
        try:
            key.public_key().verify(
                base64.b64decode(oauth["oauth_signature"]),
                base_string.encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA1(),  # noqa: S303
            )
        except InvalidSignature:
            return Response("invalid", status=401)
        return Response(oauth["oauth_signature_method"])

    httpserver.expect_request("/photos").respond_with_handler(handler)
    params = {"consumer_key": CONSUMER_KEY, "signature_method": "RSA-SHA1", "rsa_private_key": pem}
    url = httpserver.url_for("/photos") + "?size=large&a=b%20c"
    response = send("oauth1", httpx.Request("GET", url), params, THREE_LEGGED, ack=True)
    assert response.status_code == 200
    assert response.text == "RSA-SHA1"


def test_oauth1_get_with_form_body_cannot_be_signed() -> None:
    method = get_method("oauth1")
    params = method.validate_service_params(oauth1_params(), acknowledge_insecure=True)
    request = httpx.Request("GET", "http://127.0.0.1:9/x", data={"a": "b"})
    with pytest.raises(AuthApplyError, match="cannot be signed"):
        method.prepare(request, params=params, secrets={"consumer_secret": "s"})


# ---- SOAP WS-Security UsernameToken ----------------------------------------------------------

NS = {
    "s11": soap.SOAP_NS["1.1"],
    "s12": soap.SOAP_NS["1.2"],
    "wsse": soap.WSSE_NS,
    "wsu": soap.WSU_NS,
}
ENVELOPE_11 = b"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:tns="urn:shop">
  <soap:Body><tns:GetPrice><tns:Item xsi:type="tns:Sku">A-1</tns:Item></tns:GetPrice></soap:Body>
</soap:Envelope>"""
ENVELOPE_12 = b"""<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope">
  <env:Header><trace xmlns="urn:trace">t-1</trace></env:Header>
  <env:Body><Ping xmlns="urn:ping"/></env:Body>
</env:Envelope>"""


def soap_send(httpserver: HTTPServer, body: bytes, params: dict, **headers: str) -> Request:
    httpserver.expect_request("/soap", method="POST").respond_with_data("<ok/>")
    request = httpx.Request("POST", httpserver.url_for("/soap"), content=body, headers=headers)
    secrets = {"username": "ann", "password": "pass wörd"}
    assert send("soap", request, params, secrets, ack=True).status_code == 200
    return received(httpserver)


def test_soap_11_password_digest_is_correct(httpserver: HTTPServer) -> None:
    got = soap_send(
        httpserver,
        ENVELOPE_11,
        {"password_type": "PasswordDigest"},
        SOAPAction='"urn:shop#GetPrice"',
    )
    assert got.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert got.headers["SOAPAction"] == '"urn:shop#GetPrice"'
    root = ET.fromstring(got.get_data())  # noqa: S314 - our own output
    token = root.find("s11:Header/wsse:Security/wsse:UsernameToken", NS)
    assert token is not None
    assert token.findtext("wsse:Username", namespaces=NS) == "ann"
    password = token.find("wsse:Password", NS)
    assert password is not None
    assert password.get("Type") == soap.PASSWORD_TYPES["PasswordDigest"]
    nonce = base64.b64decode(token.findtext("wsse:Nonce", namespaces=NS) or "")
    created = token.findtext("wsu:Created", namespaces=NS) or ""
    assert len(nonce) == 16
    assert created.endswith("Z")
    expected = base64.b64encode(
        hashlib.sha1(nonce + created.encode() + "pass wörd".encode()).digest()  # noqa: S324
    ).decode()
    assert password.text == expected
    # the body is untouched and keeps its prefixes, so QName values still resolve
    text = got.get_data(as_text=True)
    assert 'xsi:type="tns:Sku"' in text
    assert 'xmlns:tns="urn:shop"' in text
    assert root.find("s11:Body", NS)[0].tag == "{urn:shop}GetPrice"  # type: ignore[index]
    assert [child.tag for child in root] == [
        f"{{{NS['s11']}}}Header",
        f"{{{NS['s11']}}}Body",
    ]


def test_soap_12_password_text_into_existing_header(httpserver: HTTPServer) -> None:
    got = soap_send(
        httpserver,
        ENVELOPE_12,
        {"password_type": "PasswordText", "soap_version": "1.2"},
        **{"Content-Type": 'application/soap+xml; action="urn:ping"'},
    )
    assert got.headers["Content-Type"] == 'application/soap+xml; charset=utf-8; action="urn:ping"'
    root = ET.fromstring(got.get_data())  # noqa: S314 - our own output
    header = root.find("s12:Header", NS)
    assert header is not None
    assert [child.tag for child in header] == [f"{{{soap.WSSE_NS}}}Security", "{urn:trace}trace"]
    password = header.find("wsse:Security/wsse:UsernameToken/wsse:Password", NS)
    assert password is not None
    assert password.text == "pass wörd"
    assert password.get("Type") == soap.PASSWORD_TYPES["PasswordText"]
    assert header.find("wsse:Security/wsse:UsernameToken/wsse:Nonce", NS) is not None
    assert header.find("wsse:Security/wsse:UsernameToken/wsu:Created", NS) is not None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
            b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
            b"<soap:Body>&lol;</soap:Body></soap:Envelope>",
            soap.DOCTYPE_REFUSED,
        ),
        (
            b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>',
            soap.DOCTYPE_REFUSED,
        ),
        (b"<Envelope><Body/></Envelope>", soap.NOT_AN_ENVELOPE.format(version="1.1")),
        (ENVELOPE_12, soap.NOT_AN_ENVELOPE.format(version="1.1")),
        (
            b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/>'
            b"</s:Envelope>",
            soap.NO_SOAP_BODY,
        ),
        (
            b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header>'
            b'<w:Security xmlns:w="' + soap.WSSE_NS.encode() + b'"/></s:Header><s:Body/>'
            b"</s:Envelope>",
            soap.SECURITY_EXISTS,
        ),
        (b"", soap.BODY_REQUIRED),
    ],
)
def test_soap_refuses_unsafe_or_unusable_bodies(body: bytes, message: str) -> None:
    method = get_method("soap")
    params = method.validate_service_params({}, acknowledge_insecure=True)
    request = httpx.Request("POST", "http://127.0.0.1:9/soap", content=body)
    with pytest.raises(AuthApplyError) as info:
        method.prepare(request, params=params, secrets={"username": "u", "password": "p"})
    assert str(info.value) == message


def test_soap_malformed_xml_says_so() -> None:
    method = get_method("soap")
    request = httpx.Request("POST", "http://127.0.0.1:9/soap", content=b"<a><b></a>")
    with pytest.raises(AuthApplyError) as info:
        method.prepare(request, params={}, secrets={"username": "u", "password": "p"})
    assert str(info.value).startswith(soap.BODY_NOT_XML.format(reason=""))
