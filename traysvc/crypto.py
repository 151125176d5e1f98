"""The secrets keyring: AES-256-GCM under keys from settings.TRAYSVC_ENCRYPTION_KEYS.

The first key encrypts, every key decrypts, so keys can be rotated without downtime
(see docs/security.md). A token names the key that made it and is bound to the row that
owns it through the associated data, so a ciphertext copied to another row does not decrypt.

Token format (ascii): ``v1.<kid>.<base64url(nonce || ciphertext+tag)>`` where ``kid`` is
the first 8 hex characters of SHA-256 of the key bytes and the nonce is 12 random bytes.
The GCM associated data is ``b"v1.<kid>." + aad.encode()``, so the header is authenticated too.

No message raised here ever contains a plaintext or key material; a key is named only by
its position in the list or by its key id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

__all__ = [
    "DecryptionError",
    "MalformedTokenError",
    "TamperedError",
    "UnknownKeyError",
    "check_keyring",
    "decrypt",
    "decrypt_json",
    "encrypt",
    "encrypt_json",
    "generate_key",
    "is_current",
    "key_id",
    "key_id_of",
    "reencrypt",
    "reset_keyring_cache",
]

SETTING = "TRAYSVC_ENCRYPTION_KEYS"
VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
KID_CHARS = 8

# Configuration errors (ImproperlyConfigured). Positions count from 1; keys are never shown.
KEYS_MISSING = (
    "TRAYSVC_ENCRYPTION_KEYS is empty: set it to a comma list of urlsafe-base64 32-byte keys "
    "(the first encrypts); make one with `manage.py generate_encryption_key`."
)
KEYS_NOT_A_LIST = "TRAYSVC_ENCRYPTION_KEYS must be a list of key strings."
KEY_NOT_A_STRING = "TRAYSVC_ENCRYPTION_KEYS key {position} of {count} is not a string."
KEY_NOT_BASE64 = (
    "TRAYSVC_ENCRYPTION_KEYS key {position} of {count} is not urlsafe base64; "
    "make a key with `manage.py generate_encryption_key`."
)
KEY_WRONG_LENGTH = (
    "TRAYSVC_ENCRYPTION_KEYS key {position} of {count} decodes to {length} bytes; "
    "it must be exactly 32 bytes."
)
KEY_DUPLICATE = (
    "TRAYSVC_ENCRYPTION_KEYS key {position} of {count} is the same key as key {first}: "
    "remove one of them."
)
KEY_ID_COLLISION = (
    "TRAYSVC_ENCRYPTION_KEYS key {position} of {count} has the same key id as key {first}: "
    "replace key {position} with a new key."
)

# Decryption errors (DecryptionError). Callers prefix them with what failed ("This secret ").
UNKNOWN_KEY = (
    "encrypted with key {kid}, which is not in TRAYSVC_ENCRYPTION_KEYS: "
    "add the old key back, or re-enter the secret"
)
TAMPERED = "cannot be decrypted: it was altered or belongs to another record"
MALFORMED = "is not an encrypted value this keyring understands (expected v1.<key id>.<data>)"
NOT_JSON = "was decrypted but is not JSON: it was not written by encrypt_json"

# Programming errors (TypeError / ValueError).
AAD_REQUIRED = "aad must be a non-empty str naming the owning record, e.g. 'app.Model:<id>:field'"
PLAINTEXT_TYPE = "plaintext must be bytes or str"

_KID_RE = re.compile(r"[0-9a-f]{8}")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")
_KEY_B64_RE = re.compile(r"[A-Za-z0-9_\-+/]+={0,2}")


class DecryptionError(Exception):
    """A token that cannot be turned back into its plaintext; the message is safe to show."""


class UnknownKeyError(DecryptionError):
    """The token names a key id that is not (or no longer) in the keyring."""

    def __init__(self, kid: str) -> None:
        super().__init__(UNKNOWN_KEY.format(kid=kid))
        self.kid = kid


class TamperedError(DecryptionError):
    """Authentication failed: the token was changed, or its aad names another record."""

    def __init__(self) -> None:
        super().__init__(TAMPERED)


class MalformedTokenError(DecryptionError):
    """The value is not a v1 token at all (truncated, wrong shape, not base64url)."""

    def __init__(self) -> None:
        super().__init__(MALFORMED)


@dataclass(frozen=True)
class _Keyring:
    primary: str
    ciphers: dict[str, AESGCM] = field(repr=False)


_cache: _Keyring | None = None


def reset_keyring_cache() -> None:
    """Forget the parsed keyring so the next call reads settings again (tests, key rotation)."""
    global _cache
    _cache = None


def _on_setting_changed(*, setting: str, **_: object) -> None:
    """override_settings / pytest-django's `settings` fixture change keys: drop the cache."""
    if setting == SETTING:
        reset_keyring_cache()


setting_changed.connect(_on_setting_changed, dispatch_uid="traysvc.crypto.reset_keyring_cache")


def key_id(key: bytes) -> str:
    """The public name of a key: short enough to read in a message, useless to an attacker."""
    return hashlib.sha256(key).hexdigest()[:KID_CHARS]


def _decode_key(raw: object, position: int, count: int) -> bytes:
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("ascii")
        except UnicodeDecodeError:
            raise ImproperlyConfigured(
                KEY_NOT_BASE64.format(position=position, count=count)
            ) from None
    if not isinstance(raw, str):
        raise ImproperlyConfigured(KEY_NOT_A_STRING.format(position=position, count=count))
    text = raw.strip()
    if not _KEY_B64_RE.fullmatch(text) or len(text.rstrip("=")) % 4 == 1:
        raise ImproperlyConfigured(KEY_NOT_BASE64.format(position=position, count=count))
    # Accept keys without padding too (e.g. secrets.token_urlsafe(32)).
    padded = text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4)
    try:
        key = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(KEY_NOT_BASE64.format(position=position, count=count)) from None
    if len(key) != KEY_BYTES:
        raise ImproperlyConfigured(
            KEY_WRONG_LENGTH.format(position=position, count=count, length=len(key))
        )
    return key


def _parse_keyring(configured: object) -> _Keyring:
    if isinstance(configured, str):
        configured = [item for item in configured.split(",") if item.strip()]
    if configured is None:
        raise ImproperlyConfigured(KEYS_MISSING)
    if not isinstance(configured, list | tuple):
        raise ImproperlyConfigured(KEYS_NOT_A_LIST)
    if not configured:
        raise ImproperlyConfigured(KEYS_MISSING)
    count = len(configured)
    seen_keys: dict[bytes, int] = {}
    ciphers: dict[str, AESGCM] = {}
    positions: dict[str, int] = {}
    for position, raw in enumerate(configured, start=1):
        key = _decode_key(raw, position, count)
        if key in seen_keys:
            raise ImproperlyConfigured(
                KEY_DUPLICATE.format(position=position, count=count, first=seen_keys[key])
            )
        seen_keys[key] = position
        kid = key_id(key)
        if kid in positions:
            raise ImproperlyConfigured(
                KEY_ID_COLLISION.format(position=position, count=count, first=positions[kid])
            )
        positions[kid] = position
        ciphers[kid] = AESGCM(key)
    return _Keyring(primary=next(iter(ciphers)), ciphers=ciphers)


def _keyring() -> _Keyring:
    global _cache
    ring = _cache
    if ring is None:
        ring = _parse_keyring(getattr(settings, SETTING, None))
        _cache = ring
    return ring


def check_keyring() -> None:
    """Parse the configured keys now, raising ImproperlyConfigured with the first problem."""
    global _cache
    _cache = _parse_keyring(getattr(settings, SETTING, None))


def generate_key() -> str:
    """A new random key in the format TRAYSVC_ENCRYPTION_KEYS expects."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def _associated_data(kid: str, aad: str) -> bytes:
    if not isinstance(aad, str) or not aad:
        raise ValueError(AAD_REQUIRED)
    return f"{VERSION}.{kid}.".encode("ascii") + aad.encode("utf-8")


def _split(token: object) -> tuple[str, bytes]:
    """(kid, nonce||ciphertext) of a well-formed token, else MalformedTokenError."""
    if isinstance(token, bytes | bytearray):
        try:
            token = bytes(token).decode("ascii")
        except UnicodeDecodeError:
            raise MalformedTokenError() from None
    if not isinstance(token, str):
        raise MalformedTokenError()
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedTokenError()
    version, kid, body = parts
    if version != VERSION or not _KID_RE.fullmatch(kid) or not _B64URL_RE.fullmatch(body):
        raise MalformedTokenError()
    if len(body) % 4 == 1:
        raise MalformedTokenError()
    blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    # Only the canonical spelling: unused trailing bits must not make a second valid token.
    if base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii") != body:
        raise MalformedTokenError()
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise MalformedTokenError()
    return kid, blob


def _encrypt_with(ring: _Keyring, plaintext: bytes, aad: str) -> str:
    kid = ring.primary
    associated = _associated_data(kid, aad)
    nonce = os.urandom(NONCE_BYTES)
    sealed = ring.ciphers[kid].encrypt(nonce, plaintext, associated)
    body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
    return f"{VERSION}.{kid}.{body}"


def encrypt(plaintext: bytes | str, *, aad: str) -> str:
    """Encrypt under the primary key, bound to `aad` (the owning row's identity)."""
    if isinstance(plaintext, str):
        data = plaintext.encode("utf-8")
    elif isinstance(plaintext, bytes | bytearray | memoryview):
        data = bytes(plaintext)
    else:
        raise TypeError(PLAINTEXT_TYPE)
    return _encrypt_with(_keyring(), data, aad)


def decrypt(token: str, *, aad: str) -> bytes:
    """The plaintext of a token made by encrypt() with the same `aad`, under any known key."""
    kid, blob = _split(token)
    associated = _associated_data(kid, aad)
    cipher = _keyring().ciphers.get(kid)
    if cipher is None:
        raise UnknownKeyError(kid)
    try:
        return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated)
    except InvalidTag:
        raise TamperedError() from None


def encrypt_json(obj: Any, *, aad: str) -> str:
    """Encrypt a JSON-serialisable value (compact, UTF-8, no NaN)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return encrypt(text, aad=aad)


def decrypt_json(token: str, *, aad: str) -> Any:
    """The value given to encrypt_json()."""
    data = decrypt(token, aad=aad)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        # `from None`: a JSONDecodeError carries the whole plaintext in its .doc.
        raise DecryptionError(NOT_JSON) from None


def key_id_of(token: str) -> str:
    """The id of the key a token was made with (no keyring needed)."""
    kid, _ = _split(token)
    return kid


def is_current(token: str) -> bool:
    """True when the token is under the primary key, i.e. needs no rotation."""
    return key_id_of(token) == _keyring().primary


def reencrypt(token: str, *, aad: str) -> str:
    """Decrypt under whichever key made it and encrypt afresh under the primary key."""
    ring = _keyring()
    return _encrypt_with(ring, decrypt(token, aad=aad), aad)
