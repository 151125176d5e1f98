"""Production settings refuse to start without secrets, and pass `check --deploy`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY = "q0J9wXn0l7mJx1a8o5m0yW3c8h2b6v4n1k9z7x5c3v0="


def _run(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DEBUG",
            "SECRET_KEY",
            "TRAYSVC_ENCRYPTION_KEYS",
            "TRAYSVC_TESTING",
            "DATABASE_URL",
            "REDIS_URL",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_secret_key_is_refused_in_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = _run({"DEBUG": "0", "TRAYSVC_VAR_DIR": str(tmp_path)}, "check")
    assert result.returncode != 0
    assert (
        "SECRET_KEY is not set: set SECRET_KEY (or SECRET_KEY_FILE) when DEBUG=0." in result.stderr
    )


def test_missing_encryption_keys_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = _run({"DEBUG": "0", "SECRET_KEY": "x" * 60, "TRAYSVC_VAR_DIR": str(tmp_path)}, "check")
    assert result.returncode != 0
    assert "TRAYSVC_ENCRYPTION_KEYS is not set" in result.stderr


def test_bad_encryption_key_is_refused_at_startup(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = _run(
        {
            "DEBUG": "0",
            "SECRET_KEY": "x" * 60,
            "TRAYSVC_ENCRYPTION_KEYS": "short",
            "TRAYSVC_VAR_DIR": str(tmp_path),
        },
        "check",
    )
    assert result.returncode != 0
    assert "key 1 of 1" in result.stderr


def test_bad_boolean_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = _run({"DEBUG": "maybe", "TRAYSVC_VAR_DIR": str(tmp_path)}, "check")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_check_deploy_is_clean(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = "s3cr3t-" + "k" * 60
    result = _run(
        {
            "DEBUG": "0",
            "SECRET_KEY": secret,
            "TRAYSVC_ENCRYPTION_KEYS": KEY,
            "ALLOWED_HOSTS": "traysvc.example.com",
            "TRAYSVC_PUBLIC_URL": "https://traysvc.example.com",
            "TRAYSVC_VAR_DIR": str(tmp_path),
        },
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_secret_key_file_is_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret_file = tmp_path / "sk"
    secret_file.write_text("from-file-" + "z" * 60)
    result = _run(
        {
            "DEBUG": "0",
            "SECRET_KEY_FILE": str(secret_file),
            "TRAYSVC_ENCRYPTION_KEYS": KEY,
            "TRAYSVC_VAR_DIR": str(tmp_path),
        },
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "from-file-" + "z" * 60


@pytest.mark.django_db
def test_security_headers_are_sent(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
