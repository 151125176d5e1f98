"""The runner's tunables are settings read from the environment, and the runner obeys them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from httpclient.models import CallLog
from httpclient.runner import Call, execute
from httpclient.runner import types as T
from tests.httpclient.conftest import SECRET_TOKEN, make_auth, make_service
from traysvc.env import env_float

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = {
    "HTTPCLIENT_MAX_ATTEMPTS": 3,
    "HTTPCLIENT_RETRY_AFTER_MAX_SECONDS": 10.0,
    "HTTPCLIENT_BACKOFF_SECONDS": 0.5,
    "HTTPCLIENT_MAX_PAGES": 10,
    "HTTPCLIENT_MAX_PAGE_BYTES": 20 * 1024 * 1024,
    "HTTPCLIENT_CALLLOG_BODY_CHARS": 16384,
    "HTTPCLIENT_MAX_REQUEST_BYTES": 10 * 1024 * 1024,
}
SHOW = (
    "import django, json; django.setup(); from django.conf import settings; "
    f"print(json.dumps({{k: getattr(settings, k) for k in {sorted(DEFAULTS)!r}}}))"
)


def _settings_with(env: dict[str, str]) -> dict[str, float]:
    clean = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    clean.update(DJANGO_SETTINGS_MODULE="traysvc.settings", TRAYSVC_TESTING="1", **env)
    done = subprocess.run([sys.executable, "-c", SHOW], cwd=ROOT, env=clean, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_defaults_and_environment_overrides() -> None:
    assert _settings_with({}) == DEFAULTS
    changed = _settings_with({"HTTPCLIENT_BACKOFF_SECONDS": "0.25", "HTTPCLIENT_MAX_PAGES": "3",
                              "HTTPCLIENT_RETRY_AFTER_MAX_SECONDS": "2.5"})  # fmt: skip
    assert changed["HTTPCLIENT_BACKOFF_SECONDS"] == 0.25
    assert changed["HTTPCLIENT_RETRY_AFTER_MAX_SECONDS"] == 2.5
    assert changed["HTTPCLIENT_MAX_PAGES"] == 3


def test_env_float(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("TRAYSVC_T_FLOAT", raising=False)
    assert env_float("TRAYSVC_T_FLOAT", 0.5) == 0.5
    for raw, value in (("", 0.5), ("0.25", 0.25), (" 2 ", 2.0), ("1e-1", 0.1)):
        monkeypatch.setenv("TRAYSVC_T_FLOAT", raw)
        assert env_float("TRAYSVC_T_FLOAT", 0.5) == value
    for raw, words in (("soon", "is not a number"), ("nan", "not a finite number"),
                       ("inf", "not a finite number"), ("-1", "must be at least 0")):  # fmt: skip
        monkeypatch.setenv("TRAYSVC_T_FLOAT", raw)
        with pytest.raises(ImproperlyConfigured, match=words):
            env_float("TRAYSVC_T_FLOAT", 0.5)


@pytest.mark.django_db
def test_the_runner_reads_its_limits_from_settings(actors, loopback, httpserver, settings) -> None:  # type: ignore[no-untyped-def]
    service = make_service(actors.member_m, base_url=httpserver.url_for("/"), name="Limits")
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})

    def run(**kw):  # type: ignore[no-untyped-def]
        return execute(Call(membership=actors.member_m, service=service.public_id,
                            authentication=auth.public_id, **kw))  # fmt: skip

    settings.HTTPCLIENT_MAX_REQUEST_BYTES = 2 * 1024 * 1024
    big = run(method="POST", path="/up", body_type="raw", body="x" * (2 * 1024 * 1024 + 1))
    assert (big.http_status, big.error) == (422, T.BODY_TOO_LARGE.format(limit=2))

    settings.HTTPCLIENT_CALLLOG_BODY_CHARS = 7
    httpserver.expect_request("/long").respond_with_data("0123456789", content_type="text/plain")
    row = CallLog.objects.get(public_id=run(path="/long").call_id)
    assert row.response_body == "0123456" and row.response_truncated

    settings.HTTPCLIENT_MAX_ATTEMPTS = 2
    settings.HTTPCLIENT_BACKOFF_SECONDS = 0.01
    httpserver.expect_request("/busy").respond_with_data("busy", status=429)
    busy = run(path="/busy")
    assert busy.status == 429 and busy.attempts == 2
    assert busy.retries[0].waited_ms < 100  # the small backoff, not the 0.5 s default

    settings.HTTPCLIENT_RETRY_AFTER_MAX_SECONDS = 1.0
    httpserver.expect_request("/later").respond_with_data("", 503, {"Retry-After": "2"})
    later = run(path="/later")
    assert later.attempts == 1 and "longer than the 1 s" in later.notes[0]
