"""SOAP with a WS-Security UsernameToken header: discouraged, kept for legacy enterprise APIs.

The request body must be a SOAP envelope; a ``wsse:Security`` header with Username,
Password (text, or digest = base64(sha1(nonce + created + password))), Nonce and Created is
inserted into it. The XML is parsed with the stdlib (defusedxml is not installed), so DOCTYPE
and ENTITY declarations are refused before the document is built: no entity expansion, no
external fetches. minidom keeps the envelope's own prefixes and namespace declarations, which
QName values such as ``xsi:type="tns:Thing"`` depend on.
"""

# ruff: noqa: S105 - message constants and field names mention tokens; none is a secret

from __future__ import annotations

import base64
import hashlib
import os
import xml.parsers.expat
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from xml.dom import minidom

import httpx
from pydantic import field_validator

from .base import (
    AuthApplyError,
    AuthMethod,
    ParamsBase,
    ParamsModel,
    request_body,
    require_secret,
    unique,
)
from .basic import PASSWORD_FIELD, PASSWORD_LABEL, USERNAME_FIELD, USERNAME_LABEL

DISCOURAGED_REASON = (
    "WS-Security UsernameToken sends a password (or a weak digest of it) in every message; "
    "prefer token or OAuth2."
)
BODY_REQUIRED = "A SOAP call needs a SOAP envelope (XML) as its body."
BODY_NOT_XML = "The body is not well-formed XML: {reason}"
DOCTYPE_REFUSED = "The body declares a DOCTYPE or entities; they are refused for safety."
NOT_AN_ENVELOPE = "The body's root element is not a SOAP {version} Envelope."
NO_SOAP_BODY = "The SOAP envelope has no Body element."
SECURITY_EXISTS = "The envelope already has a wsse:Security header; remove it to use this method."

SOAP_NS = {
    "1.1": "http://schemas.xmlsoap.org/soap/envelope/",
    "1.2": "http://www.w3.org/2003/05/soap-envelope",
}
CONTENT_TYPES = {"1.1": "text/xml", "1.2": "application/soap+xml"}
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_TYPES = {
    "PasswordText": f"{_PROFILE}#PasswordText",
    "PasswordDigest": f"{_PROFILE}#PasswordDigest",
}
NONCE_ENCODING = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)


class SoapParams(ParamsBase):
    """How the password is sent and which SOAP version the envelope uses."""

    password_type: Literal["PasswordText", "PasswordDigest"] = "PasswordText"
    soap_version: Literal["1.1", "1.2"] = "1.1"

    @field_validator("soap_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """UsernameToken Profile 1.0: Base64(SHA-1(nonce + created + password))."""
    raw = nonce + created.encode("utf-8") + password.encode("utf-8")
    return base64.b64encode(hashlib.sha1(raw).digest()).decode("ascii")  # noqa: S324 - the spec's


def _refuse(*_args: Any) -> int:
    raise AuthApplyError(DOCTYPE_REFUSED)


def parse_envelope(body: bytes) -> minidom.Document:
    """Parse XML, refusing DTDs and entity declarations before anything is expanded."""
    scanner = xml.parsers.expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = _refuse
    scanner.EntityDeclHandler = _refuse
    scanner.UnparsedEntityDeclHandler = _refuse
    scanner.ExternalEntityRefHandler = _refuse
    try:
        scanner.Parse(body, True)
    except xml.parsers.expat.ExpatError as exc:
        raise AuthApplyError(BODY_NOT_XML.format(reason=exc)) from exc
    return minidom.parseString(body)  # noqa: S318 - DTDs and entities were refused above


def _child(parent: minidom.Element, namespace: str, local: str) -> minidom.Element | None:
    for node in parent.childNodes:
        if (
            node.nodeType == node.ELEMENT_NODE
            and node.namespaceURI == namespace
            and node.localName == local
        ):
            return node
    return None


def _text_element(
    doc: minidom.Document, namespace: str, qname: str, text: str, **attrs: str
) -> minidom.Element:
    element = doc.createElementNS(namespace, qname)
    for name, value in attrs.items():
        element.setAttribute(name, value)
    element.appendChild(doc.createTextNode(text))
    return element


def add_username_token(
    body: bytes,
    *,
    username: str,
    password: str,
    password_type: str,
    soap_version: str,
    nonce: bytes | None = None,
    created: str | None = None,
) -> bytes:
    """The envelope with a wsse:Security UsernameToken as the first header block."""
    doc = parse_envelope(body)
    envelope = doc.documentElement
    soap_ns = SOAP_NS[soap_version]
    if envelope is None or envelope.namespaceURI != soap_ns or envelope.localName != "Envelope":
        raise AuthApplyError(NOT_AN_ENVELOPE.format(version=soap_version))
    soap_body = _child(envelope, soap_ns, "Body")
    if soap_body is None:
        raise AuthApplyError(NO_SOAP_BODY)
    header = _child(envelope, soap_ns, "Header")
    if header is None:
        qname = f"{envelope.prefix}:Header" if envelope.prefix else "Header"
        header = doc.createElementNS(soap_ns, qname)
        envelope.insertBefore(header, soap_body)
    elif _child(header, WSSE_NS, "Security") is not None:
        raise AuthApplyError(SECURITY_EXISTS)

    nonce = nonce if nonce is not None else os.urandom(16)
    created = created or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    secret = (
        password if password_type == "PasswordText" else password_digest(nonce, created, password)
    )
    security = doc.createElementNS(WSSE_NS, "wsse:Security")
    security.setAttribute("xmlns:wsse", WSSE_NS)
    security.setAttribute("xmlns:wsu", WSU_NS)
    token = doc.createElementNS(WSSE_NS, "wsse:UsernameToken")
    token.appendChild(_text_element(doc, WSSE_NS, "wsse:Username", username))
    token.appendChild(
        _text_element(doc, WSSE_NS, "wsse:Password", secret, Type=PASSWORD_TYPES[password_type])
    )
    token.appendChild(
        _text_element(
            doc,
            WSSE_NS,
            "wsse:Nonce",
            base64.b64encode(nonce).decode("ascii"),
            EncodingType=NONCE_ENCODING,
        )
    )
    token.appendChild(_text_element(doc, WSU_NS, "wsu:Created", created))
    security.appendChild(token)
    header.insertBefore(security, header.firstChild)
    return doc.toxml(encoding="utf-8")


def content_type(current: str, soap_version: str) -> str:
    """The version's media type with charset=utf-8, keeping other params (1.2's ``action``)."""
    media = CONTENT_TYPES[soap_version]
    parts = [p.strip() for p in current.split(";")]
    kept = []
    if parts[0].lower() == media:
        kept = [p for p in parts[1:] if p and not p.lower().startswith("charset=")]
    return "; ".join([media, "charset=utf-8", *kept])


class SoapMethod(AuthMethod):
    """User name and password carried inside the SOAP message instead of HTTP headers."""

    key = "soap"
    label = "SOAP (WS-Security UsernameToken)"
    discouraged = True
    discouraged_reason = DISCOURAGED_REASON
    params_model = SoapParams
    credential_fields = [USERNAME_FIELD, PASSWORD_FIELD]

    def apply(
        self, request: httpx.Request, *, params: ParamsModel, secrets: Mapping[str, str]
    ) -> httpx.Request:
        assert isinstance(params, SoapParams)  # noqa: S101 - narrowing
        username = require_secret(secrets, "username", USERNAME_LABEL)
        password = require_secret(secrets, "password", PASSWORD_LABEL)
        body = request_body(request)
        if not body.strip():
            raise AuthApplyError(BODY_REQUIRED)
        content = add_username_token(
            body,
            username=username,
            password=password,
            password_type=params.password_type,
            soap_version=params.soap_version,
        )
        headers = httpx.Headers(request.headers)
        for name in ("content-length", "transfer-encoding"):
            headers.pop(name, None)
        headers["Content-Type"] = content_type(headers.get("content-type", ""), params.soap_version)
        return httpx.Request(
            request.method,
            request.url,
            headers=headers,
            content=content,
            extensions=request.extensions,
        )

    def secret_values(
        self, params: ParamsModel | Mapping[str, Any], secrets: Mapping[str, str]
    ) -> list[str]:
        # A digest is single-use (fresh nonce); the password itself is what must not leak.
        return unique([secrets.get("password")])


METHOD = SoapMethod()
