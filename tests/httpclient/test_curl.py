"""Copy as curl: a runnable command with placeholders where credentials were."""

from __future__ import annotations

import base64
import shlex

from httpclient.curl import CurlFile, CurlRequest, to_curl
from httpclient.redaction import Redactor

TOKEN = "tok-abcdef-123456"


def test_bearer_json_post_with_placeholders() -> None:
    cmd = to_curl(
        CurlRequest(
            method="POST",
            url=f"https://api.example/v1/items?x=1&access_token={TOKEN}",
            headers=[("Authorization", f"Bearer {TOKEN}"), ("Content-Type", "application/json"),
                     ("Host", "api.example"), ("Content-Length", "9")],
            body_type="json",
            body=b'{"a": "b"}',
            follow_redirects=True,
            max_redirects=3,
            timeout=12,
        ),
        Redactor({"token": TOKEN}),
    )  # fmt: skip
    assert TOKEN not in cmd
    words = shlex.split(cmd.replace("\\\n", " "))
    assert words[:3] == ["curl", "-X", "POST"]
    assert "https://api.example/v1/items?x=1&access_token=<TOKEN>" in words
    assert "Authorization: Bearer <TOKEN>" in words
    assert "Host: api.example" not in words and "Content-Length: 9" not in words
    assert words[words.index("--data-raw") + 1] == '{"a": "b"}'
    assert ["-L", "--max-redirs", "3", "--max-time", "12"] == words[-5:]


def test_basic_becomes_dash_u_with_the_password_hidden() -> None:
    header = "Basic " + base64.b64encode(b"alice:hunter2-secret").decode()
    cmd = to_curl(
        CurlRequest(method="GET", url="https://h/x", headers=[("Authorization", header)]),
        Redactor({"password": "hunter2-secret"}),
    )
    assert "-u 'alice:<PASSWORD>'" in cmd
    assert "hunter2" not in cmd and header not in cmd


def test_multipart_uses_form_fields_and_file_references() -> None:
    cmd = to_curl(
        CurlRequest(
            method="POST",
            url="https://h/upload",
            headers=[("Content-Type", "multipart/form-data; boundary=xyz")],
            body_type="multipart",
            body=b"--xyz...",
            form_fields=[("title", "@not-a-file")],
            files=[CurlFile("file", "a.txt", "text/plain")],
        ),
        Redactor(),
    )
    assert "boundary" not in cmd
    words = shlex.split(cmd.replace("\\\n", " "))
    assert words[words.index("--form-string") + 1] == "title=@not-a-file"
    assert words[words.index("-F") + 1] == "file=@a.txt;type=text/plain"


def test_head_and_binary_body() -> None:
    assert to_curl(CurlRequest(method="HEAD", url="https://h/"), Redactor()).startswith(
        "curl \\\n  --head"
    )
    cmd = to_curl(CurlRequest(method="PUT", url="https://h/", headers=[], body_type="raw",
                              body=b"\xff\xfe"), Redactor())  # fmt: skip
    assert "--data-binary @request-body.bin" in cmd


def test_a_secret_in_a_header_name_is_masked() -> None:
    cmd = to_curl(
        CurlRequest(method="GET", url="https://api.example/v1", headers=[(f"X-{TOKEN}", "1")],
                    body_type="none", body=b"", follow_redirects=False, max_redirects=0,
                    timeout=5),
        Redactor({"token": TOKEN}),
    )  # fmt: skip
    assert TOKEN not in cmd
    assert "X-<TOKEN>: 1" in shlex.split(cmd.replace("\\\n", " "))
