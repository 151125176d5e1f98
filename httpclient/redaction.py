"""Masking secrets out of everything a call leaves behind: CallLog, results, logs, curl.

A `Redactor` knows the secret values of one call (the authentication's credentials, the
service's secret params, secret extra parameters) and masks:

- the values of credential-carrying headers (Authorization, Proxy-Authorization, Cookie,
  Set-Cookie, and headers whose name says token/key/secret...), keeping an auth scheme word
  ("Bearer [REDACTED]") so a reader still sees what kind of credential went out;
- the values of token-ish query parameters (access_token, api_key, signature, ...);
- any header or query value equal to a secret, and any occurrence of a secret (or its
  percent-/JSON-encoded forms) inside a URL, a body or an error message.

Masking is deliberately generous: a redacted "sort_key" costs a reader a little, a leaked
token costs much more. Plain Python: no Django, so it is cheap and testable alone.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

MASK = "[REDACTED]"
PLACEHOLDER = "<{label}>"
GENERIC_LABEL = "REDACTED"

SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
# Name segments (split on - _ . and camelCase) that mark a header or query param as a credential.
SENSITIVE_SEGMENTS = frozenset(
    {
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "apikey",
        "key",
        "signature",
        "sig",
        "session",
        "sessionid",
        "auth",
        "authorization",
        "credential",
        "credentials",
        "jwt",
        "bearer",
        "cookie",
    }
)
SENSITIVE_NAMES = frozenset({"code", "x-amz-security-token", "sid"})
AUTH_SCHEMES = frozenset({"bearer", "basic", "digest", "token", "oauth", "hmac", "negotiate"})
# Shorter secrets are masked only where a whole value equals them, not inside other text.
MIN_SUBSTRING_LENGTH = 4

_SPLIT = re.compile(r"[-_.\s]+|(?<=[a-z0-9])(?=[A-Z])")


@functools.lru_cache(maxsize=2048)
def is_sensitive_name(name: str) -> bool:
    """Does a header or query parameter name say it carries a credential?"""
    lowered = name.strip().lower()
    if lowered in SENSITIVE_HEADERS or lowered in SENSITIVE_NAMES:
        return True
    segments = {s.lower() for s in _SPLIT.split(name.strip()) if s}
    if segments & SENSITIVE_SEGMENTS:
        return True
    # "accesstoken", "apitoken", "clientsecret": glued words.
    return any(word in lowered for word in ("token", "secret", "password", "apikey"))


def _encoded_forms(value: str) -> list[str]:
    """The value and the ways it shows up once encoded into a URL or a JSON document."""
    forms = [value, quote(value, safe=""), quote(value), quote_plus(value)]
    dumped = json.dumps(value)[1:-1]
    forms.append(dumped)
    return forms


class Redactor:
    """Masks the given secrets; `placeholders` names them (<TOKEN>) instead, for curl."""

    def __init__(
        self,
        secrets: Iterable[str] | Mapping[str, str] = (),
        *,
        placeholders: bool = False,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.placeholders = placeholders
        self._labels: dict[str, str] = {}
        self._exact: set[str] = set()
        self._add(secrets, labels or {})

    def _add(self, secrets: Iterable[str] | Mapping[str, str], labels: Mapping[str, str]) -> None:
        # A mapping is label -> value (TOKEN -> "abc"); an iterable is values alone.
        if isinstance(secrets, Mapping):
            pairs = [(str(v), str(k).upper()) for k, v in secrets.items() if v]
        else:
            pairs = [(str(v), labels.get(str(v), GENERIC_LABEL)) for v in secrets if v]
        for value, label in pairs:
            for form in _encoded_forms(value):
                if not form:
                    continue
                self._exact.add(form)
                if len(form) >= MIN_SUBSTRING_LENGTH and (
                    form not in self._labels or self._labels[form] == GENERIC_LABEL
                ):
                    self._labels[form] = label
        # Longest first, so "Basic abc" goes before "abc" and nothing is half-masked.
        self._ordered = sorted(self._labels, key=len, reverse=True)
        self._ordered_bytes = [(s.encode(), self._mask_for(s).encode()) for s in self._ordered]

    def with_secrets(self, secrets: Iterable[str] | Mapping[str, str]) -> Redactor:
        """A redactor that also masks these (a refreshed token joins the old one)."""
        other = Redactor(placeholders=self.placeholders)
        other._labels = dict(self._labels)
        other._exact = set(self._exact)
        other._add(secrets, {})
        return other

    def as_placeholders(self) -> Redactor:
        """The same secrets, named instead of masked (for "Copy as curl")."""
        other = Redactor(placeholders=True)
        other._labels = dict(self._labels)
        other._exact = set(self._exact)
        other._add((), {})
        return other

    @property
    def secrets(self) -> list[str]:
        return list(self._exact)

    def _mask_for(self, secret: str | None = None) -> str:
        if not self.placeholders:
            return MASK
        label = self._labels.get(secret, GENERIC_LABEL) if secret else GENERIC_LABEL
        return PLACEHOLDER.format(label=label)

    def label_of(self, value: str) -> str | None:
        """The placeholder for a value that is exactly a secret, else None."""
        if value in self._exact:
            return self._mask_for(value if value in self._labels else None)
        return None

    # -- text ----------------------------------------------------------------------------------

    def text(self, value: str) -> str:
        """Mask every secret inside a piece of text (URL path, body, error message)."""
        if not value:
            return value
        if value in self._exact:
            return self._mask_for(value if value in self._labels else None)
        for secret in self._ordered:
            if secret in value:
                value = value.replace(secret, self._mask_for(secret))
        return value

    def bytes(self, value: bytes) -> bytes:
        """Mask every secret inside raw bytes (a response body before it is decoded)."""
        for secret, mask in self._ordered_bytes:
            if secret in value:
                value = value.replace(secret, mask)
        return value

    def json(self, value: Any) -> Any:
        """Mask secrets in every string of a parsed JSON document (keys included)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(item) for item in value]
        if isinstance(value, dict):
            return {self.text(str(k)): self.json(v) for k, v in value.items()}
        return value

    # -- headers -------------------------------------------------------------------------------

    def header_value(self, name: str, value: str) -> str:
        """One header's value as it may be shown."""
        exact = self.label_of(value)
        if exact is not None:
            return exact
        if name.strip().lower() in SENSITIVE_HEADERS or is_sensitive_name(name):
            scheme, _, rest = value.partition(" ")
            if rest and scheme.lower() in AUTH_SCHEMES:
                inner = self.label_of(rest.strip()) or self._mask_for()
                return f"{scheme} {inner}"
            return self._mask_for()
        return self.text(value)

    def headers(self, pairs: Iterable[tuple[str, str]] | Mapping[str, str]) -> list[list[str]]:
        """Header pairs with credential values masked, order and repeats kept."""
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        return [[self.text(str(n)), self.header_value(str(n), str(v))] for n, v in items]

    # -- URLs ----------------------------------------------------------------------------------

    def query_pair(self, name: str, value: str) -> tuple[str, str]:
        """A decoded query pair as it may be shown."""
        exact = self.label_of(value)
        if exact is not None:
            return self.text(name), exact
        if is_sensitive_name(name):  # the name itself may be a secret (?tok-SECRET-1234)
            return self.text(name), self._mask_for()
        return self.text(name), self.text(value)

    def query_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[list[str]]:
        return [list(self.query_pair(str(k), str(v))) for k, v in pairs]

    def url(self, url: str) -> str:
        """A URL with token-ish query values and every secret masked; no userinfo, no fragment."""
        if not url:
            return url
        head, _, fragment_free = url.partition("#")
        del fragment_free
        base, sep, query = head.partition("?")
        scheme, dslash, rest = base.partition("://")
        if dslash and "@" in rest.split("/", 1)[0]:
            host_part, slash, path = rest.partition("/")
            base = f"{scheme}://{host_part.rsplit('@', 1)[1]}{slash}{path}"
        base = self.text(base)
        if not sep:
            return base
        shown = []
        for raw in query.split("&"):
            if not raw:
                continue
            raw_name, eq, raw_value = raw.partition("=")
            name, value = unquote_plus(raw_name), unquote_plus(raw_value)
            exact = self.label_of(value) or self.label_of(raw_value)
            if exact is not None:
                shown.append(f"{self._query_part(raw_name, name)}={exact}")
            elif is_sensitive_name(name) and eq:
                shown.append(f"{self._query_part(raw_name, name)}={self._mask_for()}")
            else:
                pair = f"{self._query_part(raw_name, name)}{eq}{self._query_part(raw_value, value)}"
                shown.append(pair if pair != raw else self.text(raw))
        return f"{base}?{'&'.join(shown)}" if shown else base

    def _query_part(self, raw: str, decoded: str) -> str:
        """A query name or value as sent, masked; decoded when only that form shows a secret
        (an encoding the masked forms do not cover: lowercase hex, %20 for a space)."""
        masked = self.text(raw)
        if masked != raw:
            return masked
        masked = self.text(decoded)
        return masked if masked != decoded else raw
