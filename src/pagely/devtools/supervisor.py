"""`pagely run`: migrate, seed, then supervise a worker, beat and the API until Ctrl-C.

Children run in their own sessions so a terminal Ctrl-C reaches only this process, which then
stops them in order (API, beat, worker) before the embedded services are shut down; and each child
asks the kernel for SIGTERM should this process die without cleaning up.

A child that exits on its own (a crash, an OOM kill) is restarted after a backoff that doubles
with each recent exit (1 s, 2 s, 4 s ... up to 30 s), with a log line saying so; one that
exits `CRASH_LOOP_EXITS` times within `CRASH_LOOP_SECONDS` stops the run, naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

import httpx

from pagely.core import migrations as migrate
from pagely.core.db import run_in_transaction
from pagely.settings import Settings

_PR_SET_PDEATHSIG = 1
_STOP_GRACE_SECONDS = 15.0
CRASH_LOOP_EXITS = 5
CRASH_LOOP_SECONDS = 60.0
_FIRST_BACKOFF_SECONDS = 1.0
_MAX_BACKOFF_SECONDS = 30.0


@dataclass
class RestartPolicy:
    """When to start a child again after it exited, and when to give up on it."""

    exits: deque[float] = field(default_factory=deque)

    def exited(self, now: float) -> float | None:
        """Record an exit at `now`: the seconds to wait before restarting, or None when the
        child is crash-looping (CRASH_LOOP_EXITS exits within CRASH_LOOP_SECONDS)."""
        self.exits.append(now)
        while self.exits and self.exits[0] <= now - CRASH_LOOP_SECONDS:
            self.exits.popleft()
        if len(self.exits) >= CRASH_LOOP_EXITS:
            return None
        backoff = _FIRST_BACKOFF_SECONDS * (1 << (len(self.exits) - 1))
        return min(backoff, _MAX_BACKOFF_SECONDS)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"signal {-returncode}"
    return f"code {returncode}"


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec hook asking the kernel for SIGTERM when this process dies. The libc function
    is looked up here, before fork, so the hook itself only makes one system call."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


@dataclass
class Child:
    name: str
    args: tuple[str, ...]
    proc: subprocess.Popen[bytes] | None = None
    restart_at: float | None = None  # waiting out a backoff
    policy: RestartPolicy = field(default_factory=RestartPolicy)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pagely.cli", *self.args],
            env=os.environ.copy(),
            start_new_session=True,
            preexec_fn=_die_with_parent_hook(),
        )
        self.restart_at = None

    def check(self, now: float) -> bool:
        """Restart the child when it exited or its backoff is over; False when it is
        crash-looping and the run must stop."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                print(f"pagely: restarting {self.name}", file=sys.stderr, flush=True)
                self.start()
            return True
        assert self.proc is not None
        if self.proc.poll() is None:
            return True
        how = describe_exit(self.proc.returncode)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # what it left (a worker's pool) goes too
        delay = self.policy.exited(now)
        if delay is None:
            print(
                f"pagely: {self.name} exited with {how}, {CRASH_LOOP_EXITS} times in "
                f"{CRASH_LOOP_SECONDS:.0f} s; stopping",
                file=sys.stderr,
                flush=True,
            )
            return False
        print(
            f"pagely: {self.name} exited with {how}; restarting in {delay:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        self.restart_at = now + delay
        return True


def _stop(children: list[Child]) -> None:
    running = [c for c in children if c.proc is not None and c.proc.poll() is None]
    for child in running:
        assert child.proc is not None
        child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE_SECONDS
    for child in running:
        assert child.proc is not None
        try:
            child.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"pagely: {child.name} did not stop in time, killing it", file=sys.stderr)
            child.proc.kill()
            child.proc.wait()


def _base_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def _banner(settings: Settings) -> str:
    base = _base_url(settings)
    lines = [
        "",
        "Pagely is running",
        f"  API docs      {base}/docs",
        f"  Readiness     {base}/health/ready",
    ]
    if settings.dev_mail_dir:
        lines.append(f"  Mail sink     {base}/dev/mail")
    lines += [
        f"  Demo admin    {settings.demo_admin_email}"
        f" / {settings.demo_admin_password.get_secret_value()}",
        "  Stop with Ctrl-C",
        "",
    ]
    return "\n".join(lines)


def run_all(settings: Settings) -> int:
    from pagely.devtools.seed import seed_demo

    stopping = False

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    print("pagely: applying migrations", flush=True)
    migrate.upgrade(settings.require("database_url"))
    if stopping:
        return 130
    password = settings.demo_admin_password.get_secret_value()
    added = asyncio.run(
        run_in_transaction(settings, lambda s: seed_demo(s, settings.demo_admin_email, password))
    )
    print(f"pagely: demo data ready ({added} new books)", flush=True)
    if stopping:
        return 130

    # Children inherit these: the environment (never the production default), the signing key
    # (the CLI exported the development key when JWT_SECRET was unset); links in emails must
    # point at this server.
    os.environ["ENVIRONMENT"] = settings.environment
    os.environ["JWT_SECRET"] = settings.jwt_key()
    os.environ.setdefault("PORT", str(settings.port))
    os.environ.setdefault("HOST", settings.host)
    if "public_base_url" not in settings.model_fields_set:
        os.environ["PUBLIC_BASE_URL"] = _base_url(settings)
    children = [Child("worker", ("worker",)), Child("beat", ("beat",)), Child("api", ("serve",))]
    for child in children:
        child.start()
    announced = False
    exit_code = 0
    try:
        while not stopping:
            if not announced and _answers(f"{_base_url(settings)}/health"):
                print(_banner(settings), flush=True)
                announced = True
            now = time.monotonic()
            if not all(child.check(now) for child in children):
                exit_code = 1
                break
            time.sleep(0.2)
    finally:
        print("pagely: stopping", flush=True)
        _stop(list(reversed(children)))
    return exit_code
