"""`make run`'s supervisor: the web server and one Celery worker (with embedded beat), started
together and stopped together, so that Ctrl-C or a SIGTERM to `make` leaves nothing running.

    python -m traysvc.devserver [--host 127.0.0.1] [--port 8000]

It loads no Django settings and no app code: it only starts processes, which read the
environment themselves.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.2

STARTING = "devserver: starting traysvc on {url}"
STARTED = "devserver: {name} pid={pid}: {command}"
READY = "traysvc is running at {url}  (Ctrl-C stops it)"
STOPPING = "devserver: {signal} received; stopping {names}."
CHILD_DIED = "devserver: {name} exited with code {code}; stopping the rest."
KILLED = "devserver: {name} did not stop within {seconds:g} s; killed it."
START_FAILED = "devserver: could not start {name}: {error}"

_PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    """One supervised process; it leads its own process group, so signals reach its workers."""

    name: str
    proc: subprocess.Popen[bytes]

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.proc.pid, signum)
        except ProcessLookupError:
            pass

    def group_alive(self) -> bool:
        """True while the child or anything left in its process group still exists."""
        if self.proc.poll() is None:
            return True
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _say(message: str) -> None:
    """Print from anywhere, signal handlers included (a plain write cannot re-enter)."""
    os.write(sys.stdout.fileno(), (message + "\n").encode())


def web_command(host: str, port: int) -> list[str]:
    """gunicorn with threads: the sandbox OAuth provider is called by the app itself, so a
    single synchronous worker would wait on its own request."""
    return [
        sys.executable, "-m", "gunicorn", "traysvc.wsgi:application",
        "--bind", f"{host}:{port}",
        "--workers", "2", "--threads", "4",
        "--no-control-socket",
        "--access-logfile", "-",
    ]  # fmt: skip


def worker_command() -> list[str]:
    """One Celery worker with beat embedded: enough for a laptop, never for production."""
    return [
        sys.executable, "-m", "celery", "-A", "traysvc", "worker", "-B",
        "--loglevel", "INFO", "--concurrency", "2", "--pool", "threads",
    ]  # fmt: skip


def port_open(host: str, port: int) -> Callable[[], bool]:
    """A readiness probe that never runs application code: once gunicorn listens, a browser's
    request waits in the backlog until a worker takes it. (An HTTP probe would, with a broken
    app under DEBUG, render a debug page per poll.)"""
    connect_host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104

    def probe() -> bool:
        try:
            socket.create_connection((connect_host, port), timeout=0.5).close()
        except OSError:
            return False
        return True

    return probe


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """Linux: the child gets SIGTERM if the supervisor itself is killed (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the supervisor died before prctl took effect
            os._exit(1)

    return preexec


def start_child(name: str, command: Sequence[str], *, cwd: Path = BASE_DIR) -> Child:
    """Start one child in a new session (its own process group), with no stdin to read."""
    proc = subprocess.Popen(  # noqa: S603 — our own argv, no shell
        list(command),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent(os.getpid()),  # safe: the supervisor has no threads
    )
    _say(STARTED.format(name=name, pid=proc.pid, command=" ".join(command)))
    return Child(name, proc)


def stop_children(children: Sequence[Child], *, grace: float = STOP_GRACE_SECONDS) -> None:
    """Wait for every group to go; whatever outlives the grace period is killed."""
    deadline = time.monotonic() + grace
    while any(c.group_alive() for c in children) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS / 2)
    for child in children:
        if child.group_alive():
            child.signal_group(signal.SIGKILL)
            _say(KILLED.format(name=child.name, seconds=grace))
    kill_deadline = time.monotonic() + 2
    while any(c.group_alive() for c in children) and time.monotonic() < kill_deadline:
        time.sleep(POLL_SECONDS / 2)


def supervise(
    commands: dict[str, Sequence[str]],
    *,
    ready: Callable[[], bool] | None = None,
    ready_message: str = "",
    grace: float = STOP_GRACE_SECONDS,
    cwd: Path = BASE_DIR,
) -> int:
    """Run the commands until a signal (exit 0) or until one of them exits (exit 1)."""
    children: list[Child] = []
    requested: list[int] = []
    signalled: set[int] = set()

    def forward(signum: int) -> None:
        for child in children:
            child.signal_group(signum)
            signalled.add(child.proc.pid)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not requested:
            names = ", ".join(c.name for c in children) or "nothing"
            _say(STOPPING.format(signal=signal.Signals(signum).name, names=names))
        requested.append(signum)
        forward(signal.SIGTERM if signum == signal.SIGHUP else signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    failed = False
    try:
        for name, command in commands.items():
            if requested:
                break
            try:
                children.append(start_child(name, command, cwd=cwd))
            except OSError as exc:
                _say(START_FAILED.format(name=name, error=exc))
                failed = True
                break
        announced = ready is None
        while not (failed or requested):
            for child in children:
                code = child.proc.poll()
                if code is not None:
                    _say(CHILD_DIED.format(name=child.name, code=code))
                    failed = True
                    break
            if failed or requested:
                break
            if not announced and ready is not None and ready():
                _say(ready_message)
                announced = True
            time.sleep(POLL_SECONDS)
    finally:
        # Children that no signal reached yet (one died, or a signal came mid-start) get SIGTERM.
        for child in children:
            if child.proc.pid not in signalled:
                child.signal_group(signal.SIGTERM)
        stop_children(children, grace=grace)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m traysvc.devserver`, as `make run` starts it."""
    parser = argparse.ArgumentParser(
        prog="python -m traysvc.devserver",
        description="Serve traysvc with gunicorn plus one Celery worker with embedded beat.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port} is not a TCP port")

    url = f"http://{args.host}:{args.port}/"
    _say(STARTING.format(url=url))
    return supervise(
        {"web": web_command(args.host, args.port), "worker": worker_command()},
        ready=port_open(args.host, args.port),
        ready_message=READY.format(url=url),
    )


if __name__ == "__main__":
    raise SystemExit(main())
