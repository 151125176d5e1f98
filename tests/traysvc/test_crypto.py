"""The secrets keyring: round trips, binding to the owning row, tampering, rotation, config."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from io import StringIO

import pytest
from django.core.checks import registry
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings

from traysvc import checks, crypto

AAD = "services.Authentication:0b4f6a8e-2c1d-4e3f-9a7b-5c6d7e8f9a0b:secrets"
OTHER_AAD = "services.Authentication:7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d:secrets"
SECRET = "s3cr3t-refresh-token-ÿ"

KEY_OLD = base64.urlsafe_b64encode(bytes(range(32))).decode()
KEY_NEW = base64.urlsafe_b64encode(bytes(range(100, 132))).decode()
KID_OLD = hashlib.sha256(bytes(range(32))).hexdigest()[:8]
KID_NEW = hashlib.sha256(bytes(range(100, 132))).hexdigest()[:8]


@pytest.fixture
def use_keys(settings) -> Iterator[Callable[..., None]]:
    """Set TRAYSVC_ENCRYPTION_KEYS for one test, with the cache reset before and after."""

    def _use(*keys: object) -> None:
        settings.TRAYSVC_ENCRYPTION_KEYS = list(keys)
        crypto.reset_keyring_cache()

    crypto.reset_keyring_cache()
    _use(KEY_OLD)
    yield _use
    crypto.reset_keyring_cache()


def _blob(token: str) -> bytes:
    """nonce || ciphertext || tag of a token."""
    body = token.rsplit(".", 1)[1]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def _flip(token: str, index: int) -> str:
    """The same token with one byte of its nonce||ciphertext||tag changed."""
    blob = bytearray(_blob(token))
    blob[index] ^= 0x01
    head = token.rsplit(".", 1)[0]
    return f"{head}.{base64.urlsafe_b64encode(bytes(blob)).rstrip(b'=').decode()}"


# Round trips and format.


def test_str_round_trip_gives_utf8_bytes(use_keys) -> None:
    token = crypto.encrypt(SECRET, aad=AAD)
    assert crypto.decrypt(token, aad=AAD) == SECRET.encode("utf-8")


def test_bytes_round_trip(use_keys) -> None:
    data = bytes(range(256))
    assert crypto.decrypt(crypto.encrypt(data, aad=AAD), aad=AAD) == data


def test_empty_plaintext_round_trips(use_keys) -> None:
    assert crypto.decrypt(crypto.encrypt(b"", aad=AAD), aad=AAD) == b""


def test_json_round_trip(use_keys) -> None:
    value = {"access_token": SECRET, "expires_in": 3600, "scopes": ["a", "b"], "x": None}
    token = crypto.encrypt_json(value, aad=AAD)
    assert crypto.decrypt_json(token, aad=AAD) == value


def test_decrypt_json_of_non_json_names_no_plaintext(use_keys) -> None:
    token = crypto.encrypt("not json " + SECRET, aad=AAD)
    with pytest.raises(crypto.DecryptionError) as info:
        crypto.decrypt_json(token, aad=AAD)
    assert str(info.value) == crypto.NOT_JSON
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_token_format_is_v1_kid_base64url(use_keys) -> None:
    token = crypto.encrypt(b"x", aad=AAD)
    version, kid, _ = token.split(".")
    assert isinstance(token, str) and token.isascii()
    assert (version, kid) == ("v1", KID_OLD)
    assert crypto.key_id_of(token) == KID_OLD
    assert len(_blob(token)) == 12 + 1 + 16  # nonce, one byte of ciphertext, tag
    assert SECRET not in crypto.encrypt(SECRET, aad=AAD)


def test_two_encryptions_of_the_same_value_differ(use_keys) -> None:
    first = crypto.encrypt(SECRET, aad=AAD)
    second = crypto.encrypt(SECRET, aad=AAD)
    assert first != second
    assert _blob(first)[:12] != _blob(second)[:12]


def test_wrong_plaintext_type_and_empty_aad_are_refused(use_keys) -> None:
    with pytest.raises(TypeError, match=crypto.PLAINTEXT_TYPE):
        crypto.encrypt(123, aad=AAD)  # type: ignore[arg-type]
    with pytest.raises(ValueError) as info:
        crypto.encrypt(SECRET, aad="")
    assert str(info.value) == crypto.AAD_REQUIRED


# Binding and tampering.


def test_ciphertext_copied_to_another_row_does_not_decrypt(use_keys) -> None:
    token = crypto.encrypt(SECRET, aad=AAD)
    with pytest.raises(crypto.DecryptionError) as info:
        crypto.decrypt(token, aad=OTHER_AAD)
    assert str(info.value) == crypto.TAMPERED
    assert isinstance(info.value, crypto.TamperedError)


@pytest.mark.parametrize("index", [0, 11, 12, -1], ids=["nonce", "nonce-end", "data", "tag"])
def test_tampered_byte_does_not_decrypt(use_keys, index: int) -> None:
    token = crypto.encrypt(SECRET, aad=AAD)
    with pytest.raises(crypto.DecryptionError) as info:
        crypto.decrypt(_flip(token, index), aad=AAD)
    assert str(info.value) == crypto.TAMPERED
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "hello",
        "v1.abcdef12",
        "v2.abcdef12.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.ABCDEF12.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.abcdef12.AAAA",  # shorter than nonce + tag
        "v1.abcdef12.AAAA+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.abcdef12.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",  # non-canonical last char
        "v1.abcdef12.AAA.AAA",
    ],
)
def test_malformed_token_is_reported_as_such(use_keys, token: str) -> None:
    with pytest.raises(crypto.DecryptionError) as info:
        crypto.decrypt(token, aad=AAD)
    assert str(info.value) == crypto.MALFORMED


def test_unknown_key_id_names_the_key_and_what_to_do(use_keys) -> None:
    token = crypto.encrypt(SECRET, aad=AAD)
    use_keys(KEY_NEW)
    with pytest.raises(crypto.DecryptionError) as info:
        crypto.decrypt(token, aad=AAD)
    assert str(info.value) == (
        f"encrypted with key {KID_OLD}, which is not in TRAYSVC_ENCRYPTION_KEYS: "
        "add the old key back, or re-enter the secret"
    )
    assert isinstance(info.value, crypto.UnknownKeyError) and info.value.kid == KID_OLD


# Rotation.


def test_rotation_from_old_to_new_key(use_keys) -> None:
    old_token = crypto.encrypt(SECRET, aad=AAD)
    assert crypto.is_current(old_token)

    use_keys(KEY_NEW, KEY_OLD)
    assert crypto.decrypt(old_token, aad=AAD) == SECRET.encode()
    assert not crypto.is_current(old_token)
    rotated = crypto.reencrypt(old_token, aad=AAD)
    assert crypto.is_current(rotated)
    assert crypto.key_id_of(rotated) == KID_NEW
    assert crypto.encrypt(b"x", aad=AAD).split(".")[1] == KID_NEW

    use_keys(KEY_NEW)
    assert crypto.decrypt(rotated, aad=AAD) == SECRET.encode()
    with pytest.raises(crypto.DecryptionError) as info:
        crypto.decrypt(old_token, aad=AAD)
    assert str(info.value) == crypto.UNKNOWN_KEY.format(kid=KID_OLD)


def test_reencrypt_keeps_the_row_binding(use_keys) -> None:
    use_keys(KEY_NEW, KEY_OLD)
    rotated = crypto.reencrypt(crypto.encrypt(SECRET, aad=AAD), aad=AAD)
    with pytest.raises(crypto.DecryptionError, match=crypto.TAMPERED):
        crypto.decrypt(rotated, aad=OTHER_AAD)
    with pytest.raises(crypto.DecryptionError, match=crypto.TAMPERED):
        crypto.reencrypt(crypto.encrypt(SECRET, aad=AAD), aad=OTHER_AAD)


def test_keyring_is_cached_until_reset(use_keys, settings) -> None:
    use_keys(KEY_OLD)
    token = crypto.encrypt(SECRET, aad=AAD)
    settings.TRAYSVC_ENCRYPTION_KEYS[0] = KEY_NEW  # in place: no setting_changed signal
    assert crypto.is_current(token)
    crypto.reset_keyring_cache()
    assert not crypto.is_current(token)


def test_override_settings_resets_the_cache_by_itself(use_keys) -> None:
    token = crypto.encrypt(SECRET, aad=AAD)
    with override_settings(TRAYSVC_ENCRYPTION_KEYS=[KEY_NEW]):
        assert not crypto.is_current(token)
    assert crypto.is_current(token)


def test_unpadded_key_is_accepted(use_keys) -> None:
    use_keys(KEY_NEW.rstrip("="))
    assert crypto.key_id_of(crypto.encrypt(b"x", aad=AAD)) == KID_NEW


# Bad configuration: one line naming the position, never the key.

BAD_B64 = "not*base64!" + KEY_OLD[11:]
SHORT_KEY = base64.urlsafe_b64encode(bytes(16)).decode()


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            [KEY_NEW, BAD_B64],
            "TRAYSVC_ENCRYPTION_KEYS key 2 of 2 is not urlsafe base64; "
            "make a key with `manage.py generate_encryption_key`.",
        ),
        (
            [SHORT_KEY],
            "TRAYSVC_ENCRYPTION_KEYS key 1 of 1 decodes to 16 bytes; it must be exactly 32 bytes.",
        ),
        (
            [KEY_OLD, KEY_NEW, KEY_OLD],
            "TRAYSVC_ENCRYPTION_KEYS key 3 of 3 is the same key as key 1: remove one of them.",
        ),
        ([KEY_NEW, 42], "TRAYSVC_ENCRYPTION_KEYS key 2 of 2 is not a string."),
        ([], crypto.KEYS_MISSING),
    ],
    ids=["not-base64", "16-bytes", "duplicate", "not-a-string", "empty"],
)
def test_bad_keyring_raises_one_clear_line(use_keys, keys: list, message: str) -> None:
    use_keys(*keys)
    with pytest.raises(ImproperlyConfigured) as info:
        crypto.check_keyring()
    assert str(info.value) == message
    assert "\n" not in str(info.value)
    for key in keys:
        assert not (isinstance(key, str) and key in str(info.value))
    with pytest.raises(ImproperlyConfigured, match="TRAYSVC_ENCRYPTION_KEYS"):
        crypto.encrypt(SECRET, aad=AAD)


def test_good_keyring_passes_check(use_keys) -> None:
    use_keys(KEY_NEW, KEY_OLD)
    crypto.check_keyring()


# System check and command.


def test_system_check_reports_e001_for_a_bad_keyring(use_keys) -> None:
    assert checks.check_encryption_keys in registry.registry.get_checks()
    assert checks.check_encryption_keys(None) == []
    use_keys(KEY_NEW, SHORT_KEY)
    messages = checks.check_encryption_keys(None)
    assert [m.id for m in messages] == ["traysvc.E001"]
    assert messages[0].is_serious()
    assert messages[0].msg == crypto.KEY_WRONG_LENGTH.format(position=2, count=2, length=16)
    assert messages[0].hint == checks.KEYRING_HINT


def test_generate_encryption_key_prints_a_usable_new_key(use_keys) -> None:
    printed = []
    for _ in range(2):
        out = StringIO()
        call_command("generate_encryption_key", stdout=out)
        printed.append(out.getvalue().strip())
    assert printed[0] != printed[1]
    assert all(len(base64.urlsafe_b64decode(key)) == 32 for key in printed)
    use_keys(*printed)
    crypto.check_keyring()
    assert crypto.decrypt(crypto.encrypt(SECRET, aad=AAD), aad=AAD) == SECRET.encode()
