"""The sandbox provider served the way `make run` serves it: gunicorn with threads, SQLite.

One fresh database and one server for the module. The OAuth flow runs over real HTTP (sign
in, consent, code exchange, refresh), then concurrent token requests and API calls check that
DOT's writes on SQLite hold up under gunicorn's threads — the app calls its own token
endpoint in the live flow, so more than one request is always in flight.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from traysvc.devserver import web_command

BASE_DIR = Path(__file__).resolve().parents[2]
# The marker makes pytest-django create the test database the server's copy is made from.
pytestmark = pytest.mark.django_db

HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


@dataclass
class Live:
    url: str
    creds: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True,
        text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _fresh_database(env: dict[str, str], path: Path, django_db_blocker) -> None:  # type: ignore[no-untyped-def]
    """A migrated, empty SQLite file: a copy of the (empty) test database when that is
    SQLite — seconds instead of a 20-second migrate on a busy machine — else a migrate."""
    from django.db import connection

    with django_db_blocker.unblock():
        name = str(connection.settings_dict["NAME"])
        if connection.vendor == "sqlite" and (
            connection.creation.is_in_memory_db(name) or Path(name).name.startswith("test")
        ):
            with connection.cursor() as cursor:
                cursor.execute("VACUUM INTO %s", [str(path)])
            return
    _manage(env, "migrate", "--noinput")


@pytest.fixture(scope="module")
def live(tmp_path_factory, django_db_setup, django_db_blocker) -> Iterator[Live]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("live")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TRAYSVC_TESTING": "1",
        "TRAYSVC_SANDBOX": "1",
        "DEBUG": "0",
        "TRAYSVC_VAR_DIR": str(tmp / "var"),
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "TRAYSVC_PUBLIC_URL": url,
        "REDIS_URL": "",
    }
    _fresh_database(env, tmp / "db.sqlite3", django_db_blocker)
    creds = dict(line.split(": ", 1) for line in _manage(env, "sandbox_setup").splitlines())
    server = subprocess.Popen(  # noqa: S603
        web_command("127.0.0.1", port), cwd=BASE_DIR, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/sandbox/o/.well-known/oauth-authorization-server", timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(server.stderr.read().decode()[-3000:]) from None
                time.sleep(0.2)
        yield Live(url=url, creds=creds)
    finally:
        server.send_signal(signal.SIGINT)  # gunicorn: quick shutdown
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # the group this fixture started
            server.wait(timeout=5)


def _basic(client_id: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _sign_in(browser: httpx.Client, email: str, password: str) -> None:
    browser.get("/accounts/login/")
    response = browser.post(
        "/accounts/login/",
        data={"login": email, "password": password,
              "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
    )  # fmt: skip
    assert response.status_code == 302, response.text[:2000]


def test_authorization_code_flow_and_refresh_over_http(live) -> None:  # type: ignore[no-untyped-def]
    email, password = live.creds["user"].split(" / ")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    with httpx.Client(base_url=live.url, timeout=20) as browser:
        _sign_in(browser, email, password)
        params = {
            "response_type": "code", "client_id": live.creds["client_id"],
            "redirect_uri": live.creds["redirect_uri"], "scope": "read profile",
            "state": "st-1", "code_challenge": challenge.decode(), "code_challenge_method": "S256",
        }  # fmt: skip
        page = browser.get("/sandbox/o/authorize/", params=params)
        assert page.status_code == 200
        form = dict(HIDDEN_INPUT.findall(page.text))
        assert form["code_challenge"] == challenge.decode()
        answer = browser.post("/sandbox/o/authorize/", data={**form, "allow": "Allow"})
        assert answer.status_code == 302
        query = parse_qs(urlsplit(answer.headers["Location"]).query)
        assert query["state"] == ["st-1"] and query["iss"] == [live.creds["issuer"]]

    auth = _basic(live.creds["client_id"], live.creds["client_secret"])
    with httpx.Client(base_url=live.url, timeout=20) as machine:
        token = machine.post("/sandbox/o/token/", headers=auth, data={
            "grant_type": "authorization_code", "code": query["code"][0],
            "redirect_uri": live.creds["redirect_uri"], "code_verifier": verifier,
        }).json()  # fmt: skip
        me = machine.get(
            "/sandbox/api/me", headers={"Authorization": f"Bearer {token['access_token']}"}
        )
        assert me.json()["email"] == email
        refresh = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
        rotated = machine.post("/sandbox/o/token/", headers=auth, data=refresh).json()
        assert rotated["refresh_token"] != token["refresh_token"]
        replay = machine.post("/sandbox/o/token/", headers=auth, data=refresh)
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


def test_concurrent_tokens_and_calls_under_threads(live) -> None:  # type: ignore[no-untyped-def]
    auth = _basic(live.creds["cc_client_id"], live.creds["cc_client_secret"])

    def one(index: int) -> tuple[int, int]:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            grant = {"grant_type": "client_credentials", "scope": "read"}
            token = client.post("/sandbox/o/token/", headers=auth, data=grant)
            if token.status_code != 200:
                return token.status_code, 0
            bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
            items = client.get("/sandbox/api/items", params={"page": index % 5 + 1}, headers=bearer)
            return token.status_code, items.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(one, range(24)))
    assert results == [(200, 200)] * 24
