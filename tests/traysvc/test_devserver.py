"""`make run`'s supervisor: it serves, it stops everything on SIGTERM, and one dead child stops
the other. Real processes throughout; the end-to-end test is part of the normal suite."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from traysvc import devserver

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
# Like `make run` (DEBUG on, SQLite, the filesystem broker) but without the sandbox: its
# oauth2_provider migrations alone cost seconds, and this test is about the processes.
RUN_ENV = {"DEBUG": "1", "TRAYSVC_SANDBOX": "0", "TRAYSVC_TESTING": "1"}
START_BUDGET_SECONDS = 40
STOP_BUDGET_SECONDS = 15


def _group_gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


@pytest.fixture
def restore_signals():  # type: ignore[no-untyped-def]
    """supervise() installs handlers in this process; put pytest's back afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


@pytest.fixture
def run_env(tmp_path: Path) -> dict[str, str]:
    """An environment like `make run`'s, in a private var dir with a migrated SQLite db."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(RUN_ENV, TRAYSVC_VAR_DIR=str(tmp_path / "var"))
    migrate = subprocess.run(
        [PY, "manage.py", "migrate", "--noinput"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    return env


@pytest.mark.timeout(120)
def test_devserver_serves_then_sigterm_stops_web_and_worker(
    run_env: dict[str, str], tmp_path: Path
) -> None:
    port = _free_port()
    log_path = tmp_path / "devserver.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [PY, "-m", "traysvc.devserver", "--port", str(port)],
            cwd=REPO, env=run_env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_BUDGET_SECONDS
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            status = _status(base + "/healthz")
            if status == 404:  # no health view yet: the login page proves Django serves
                status = _status(base + "/accounts/login/")
            if status == 200:
                break
            time.sleep(0.3)
        log = log_path.read_text(errors="replace")
        assert status == 200, f"never answered 200 (last {status}):\n{log[-3000:]}"
        pids = {m[0]: int(m[1]) for m in re.findall(r"devserver: (web|worker) pid=(\d+)", log)}
        assert set(pids) == {"web", "worker"}, log[-3000:]

        deadline = time.monotonic() + 10
        while devserver.READY.format(url=base + "/") not in log_path.read_text():
            assert time.monotonic() < deadline, "the URL was never announced"
            time.sleep(0.2)

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_BUDGET_SECONDS) == 0, log_path.read_text()[-3000:]
        while not all(_group_gone(pid) for pid in pids.values()):
            assert time.monotonic() - started < STOP_BUDGET_SECONDS, f"still running: {pids}"
            time.sleep(0.2)
        assert _status(base + "/healthz") is None  # nothing listens any more
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.usefixtures("restore_signals")
def test_a_child_that_exits_stops_the_other_and_fails(tmp_path: Path, capfd) -> None:  # type: ignore[no-untyped-def]
    pid_file = tmp_path / "long.pid"
    long_running = (
        "import os,sys,time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    )
    code = devserver.supervise(
        {
            "long": [PY, "-c", long_running, str(pid_file)],
            "short": [PY, "-c", "import time,sys; time.sleep(1); sys.exit(3)"],
        },
        grace=5,
    )
    assert code == 1
    out = capfd.readouterr().out
    assert devserver.CHILD_DIED.format(name="short", code=3) in out
    long_pid = int(pid_file.read_text())
    assert _group_gone(long_pid)


@pytest.mark.usefixtures("restore_signals")
def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(capfd) -> None:  # type: ignore[no-untyped-def]
    stubborn = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    started = time.monotonic()
    code = devserver.supervise(
        {"stubborn": [PY, "-c", stubborn], "short": [PY, "-c", "import time; time.sleep(1)"]},
        grace=1,
    )
    assert code == 1  # "short" exited on its own: even exit 0 is an unexpected death
    assert time.monotonic() - started < 10
    out = capfd.readouterr().out
    assert devserver.KILLED.format(name="stubborn", seconds=1) in out


def test_web_command_has_threads_and_no_control_socket() -> None:
    cmd = devserver.web_command("127.0.0.1", 8123)
    assert cmd[:4] == [PY, "-m", "gunicorn", "traysvc.wsgi:application"]
    for flag in ("--no-control-socket", "--threads", "--bind"):
        assert flag in cmd
    assert cmd[cmd.index("--bind") + 1] == "127.0.0.1:8123"
    worker = devserver.worker_command()
    assert worker[2:6] == ["celery", "-A", "traysvc", "worker"] and "-B" in worker


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_make_run_migrates_seeds_then_serves_on_port() -> None:
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "run", "PORT=9123"],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    lines = [ln for ln in dry.stdout.splitlines() if "manage.py" in ln or "devserver" in ln]
    assert [ln.split()[-1] for ln in lines[:2]] == ["--noinput", "seed_demo"]
    assert lines[2].endswith("-m traysvc.devserver --host 127.0.0.1 --port 9123")


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_make_without_a_python_312_says_how_to_fix_it(tmp_path: Path) -> None:
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    (tmp_path / "requirements.lock").write_text("")
    res = subprocess.run(
        ["make", "venv", "PYTHON=/nonexistent/python3.12"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert res.returncode != 0
    assert "traysvc needs Python 3.12+; install it or pass PYTHON=/path/to/python3.12" in res.stderr
    assert not (tmp_path / ".venv").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_make_test_counts_no_collected_tests_as_a_failure() -> None:
    res = subprocess.run(
        ["make", "--no-print-directory", "test",
         "PYTEST_ARGS=tests/traysvc/test_compose.py -q -p no:cacheprovider -k no_such_test"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode != 0
    assert "pytest collected no tests; that is a failure" in res.stderr
