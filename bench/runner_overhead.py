"""What the runner adds to a call: N calls to a loopback upstream, direct vs through the runner.

    .venv/bin/python bench/runner_overhead.py            # plain httpx vs httpclient.runner.execute
    .venv/bin/python bench/runner_overhead.py --api      # plain httpx vs POST /api/v1/calls
    .venv/bin/python bench/runner_overhead.py --api --threads 4   # gthread workers, as deployed
    .venv/bin/python bench/runner_overhead.py -n 1000 --log-level INFO

Both sides run in the same process and the same run, interleaved call by call, so machine
noise hits them alike. The runner side is the real thing: token auth (Bearer), the SSRF guard
(loopback allowed by HTTPCLIENT_ALLOW_NETWORKS), redaction, and a CallLog row per call in a
SQLite database under a temporary TRAYSVC_VAR_DIR. `--api` serves the app with gunicorn
(2 workers) and calls the JSON API with an API key, rate limiter on.

Goals (issue 5): added median <= 1.5 ms and p99 <= 5 ms for execute; <= 4 ms median via the API.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = json.dumps({"items": [{"id": n, "name": f"item {n}"} for n in range(5)]}).encode()
TOKEN = "bench-token-" + secrets.token_hex(8)


class Upstream(BaseHTTPRequestHandler):
    """A small JSON answer over keep-alive HTTP/1.1."""

    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: without this, Nagle + delayed ACK add ~40 ms to
    # whichever client happens to be second in a round trip, and the figures mean nothing.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


def start_upstream() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def environment(var_dir: str, log_level: str, calls: int) -> dict[str, str]:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    env = {
        "DJANGO_SETTINGS_MODULE": "traysvc.settings",
        "TRAYSVC_VAR_DIR": var_dir,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TRAYSVC_ENCRYPTION_KEYS": key,
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "HTTPCLIENT_ALLOW_NETWORKS": "127.0.0.0/8",
        "API_RATE_LIMIT_PER_MINUTE": str(max(600, 4 * calls + 200)),
        "LOG_LEVEL": log_level,
        "TRAYSVC_SANDBOX": "0",
    }
    env.pop("DATABASE_URL", None)
    return env


def setup_django(env: dict[str, str]) -> None:
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def make_objects(upstream: str):  # type: ignore[no-untyped-def]
    from services.authentications import authentication_create
    from services.services import service_create
    from workspaces.management.commands.createorg import ensure_user
    from workspaces.models import Membership
    from workspaces.services import api_key_create, organization_create

    user = ensure_user("bench@example.com", secrets.token_urlsafe(16))
    org = organization_create(name="Bench", slug="bench", owner=user)
    membership = Membership.objects.select_related("organization", "user").get(
        user=user, organization=org
    )
    service = service_create(
        membership=membership,
        name="Upstream",
        base_url=upstream,
        auth_method="token",
        auth_params={"placement": "bearer"},
    )
    auth = authentication_create(
        membership=membership,
        workspace=membership.personal_workspace,
        service=service,
        name="Bench token",
        values={"token": TOKEN},
    )
    _, key = api_key_create(membership=membership)
    return membership, service, auth, key


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = statistics.quantiles(ordered, n=100, method="inclusive")[98]
    return statistics.median(ordered), p99


def report(label: str, direct: list[float], other: list[float]) -> tuple[float, float]:
    d_med, d_p99 = summary(direct)
    o_med, o_p99 = summary(other)
    print(f"{'direct httpx':<22} median {d_med:7.3f} ms   p99 {d_p99:7.3f} ms")
    print(f"{label:<22} median {o_med:7.3f} ms   p99 {o_p99:7.3f} ms")
    print(
        f"{'added per call':<22} median {o_med - d_med:7.3f} ms   p99 {o_p99 - d_p99:7.3f} ms"
        f"   (ratio of medians {o_med / d_med:.2f})"
    )
    return o_med - d_med, o_p99 - d_p99


def bench_execute(args: argparse.Namespace, upstream: str) -> None:
    import httpx

    from httpclient.runner import Call, execute

    membership, service, auth, _ = make_objects(upstream)
    call = Call(
        membership=membership,
        service=service.public_id,  # looked up per call, as the API does
        authentication=auth.public_id,
        path="/items",
        query=[("page", "1")],
    )
    direct: list[float] = []
    through: list[float] = []
    clock = time.perf_counter
    with httpx.Client() as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        for n in range(args.warmup + args.calls):
            t0 = clock()
            response = client.get(f"{upstream}/items", params={"page": "1"}, headers=headers)
            t1 = clock()
            result = execute(call)
            t2 = clock()
            assert response.status_code == 200 and result.status == 200, result.error
            if n >= args.warmup:
                direct.append((t1 - t0) * 1000)
                through.append((t2 - t1) * 1000)
    from httpclient.models import CallLog

    logged = CallLog.objects.count()
    print(f"{args.calls} calls each (+{args.warmup} warm-up), {logged} CallLog rows written")
    added_med, added_p99 = report("through execute()", direct, through)
    ok = added_med <= 1.5 and added_p99 <= 5.0
    print(f"goal added median <= 1.5 ms, p99 <= 5 ms: {'met' if ok else 'NOT met'}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_api(args: argparse.Namespace, upstream: str, env: dict[str, str]) -> None:
    import httpx

    _, service, auth, key = make_objects(upstream)
    from django.db import connections

    connections.close_all()
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    threads = ["--threads", str(args.threads)] if args.threads else []  # gthread, keep-alive
    proc = subprocess.Popen(
        [str(gunicorn), "traysvc.wsgi:application", "--workers", "2", *threads, "--bind",
         f"127.0.0.1:{port}", "--no-control-socket", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, **env},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        with httpx.Client() as client:
            while True:
                try:
                    if client.get(f"{base}/healthz", timeout=2).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("gunicorn did not start")
                time.sleep(0.2)
            body = {"service": str(service.public_id), "authentication": str(auth.public_id),
                    "path": "/items", "query": [["page", "1"]]}  # fmt: skip
            api_headers = {"Authorization": f"Bearer {key}"}
            headers = {"Authorization": f"Bearer {TOKEN}"}
            direct: list[float] = []
            through: list[float] = []
            floor: list[float] = []
            clock = time.perf_counter
            for n in range(args.warmup + args.calls):
                t0 = clock()
                response = client.get(f"{upstream}/items", params={"page": "1"}, headers=headers)
                t1 = clock()
                answer = client.post(f"{base}/api/v1/calls", json=body, headers=api_headers)
                t2 = clock()
                listing = client.get(f"{base}/api/v1/calls?limit=1", headers=api_headers)
                t3 = clock()
                assert response.status_code == 200, response.status_code
                assert answer.status_code == 200 and answer.json()["status"] == 200, answer.text
                assert listing.status_code == 200, listing.text
                if n >= args.warmup:
                    direct.append((t1 - t0) * 1000)
                    through.append((t2 - t1) * 1000)
                    floor.append((t3 - t2) * 1000)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    kind = f"gthread, {args.threads} threads each" if args.threads else "sync"
    print(f"{args.calls} calls each (+{args.warmup} warm-up); gunicorn, 2 {kind} workers, SQLite")
    added_med, _ = report("POST /api/v1/calls", direct, through)
    f_med, f_p99 = summary(floor)
    print(
        f"{'API floor':<22} median {f_med:7.3f} ms   p99 {f_p99:7.3f} ms"
        "   (GET /api/v1/calls?limit=1: HTTP, API key, rate limit, one query; no runner)"
    )
    print(f"goal added median <= 4 ms: {'met' if added_med <= 4.0 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", "--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--api", action="store_true", help="through POST /api/v1/calls")
    parser.add_argument("--log-level", default="WARNING", help="the app's LOG_LEVEL")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="--api: gunicorn gthread workers with N threads "
        "(the production shape in docker-compose.yml); 0, the default, is gunicorn's sync worker",
    )
    parser.add_argument(
        "--no-rate-limit", action="store_true", help="API_RATE_LIMIT_PER_MINUTE=0 (diagnosis)"
    )
    args = parser.parse_args()
    upstream_server, upstream = start_upstream()
    with tempfile.TemporaryDirectory(prefix="traysvc-bench-") as var_dir:
        Path(var_dir, "staticfiles").mkdir()  # whitenoise warns about a missing STATIC_ROOT
        env = environment(var_dir, args.log_level, args.calls)
        if args.no_rate_limit:
            env["API_RATE_LIMIT_PER_MINUTE"] = "0"
        setup_django(env)
        if args.api:
            bench_api(args, upstream, env)
        else:
            bench_execute(args, upstream)
    upstream_server.shutdown()


if __name__ == "__main__":
    main()
