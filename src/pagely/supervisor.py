"""`pagely run`: migrate, seed, then supervise a worker and the API until Ctrl-C.

Children run in their own sessions so a terminal Ctrl-C reaches only this process, which then
stops them in order (API, worker) before the embedded services are shut down; and each child
asks the kernel for SIGTERM should this process die without cleaning up.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from pagely import migrate
from pagely.core.db import run_in_transaction
from pagely.settings import Settings

_PR_SET_PDEATHSIG = 1
_STOP_GRACE_SECONDS = 15.0


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(name: str, *args: str) -> tuple[str, subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pagely.cli", *args],
        env=os.environ.copy(),
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    return name, proc


def _stop(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, proc in children:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE_SECONDS
    for name, proc in children:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"pagely: {name} did not stop in time, killing it", file=sys.stderr)
            proc.kill()
            proc.wait()


def _banner(settings: Settings) -> str:
    base = f"http://{settings.host}:{settings.port}"
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
    from pagely.seed import seed_demo

    stopping = False

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    print("pagely: applying migrations", flush=True)
    migrate.upgrade(settings.require("database_url"))
    password = settings.demo_admin_password.get_secret_value()
    added = asyncio.run(
        run_in_transaction(settings, lambda s: seed_demo(s, settings.demo_admin_email, password))
    )
    print(f"pagely: demo data ready ({added} new books)", flush=True)

    os.environ.setdefault("PORT", str(settings.port))
    children = [_spawn("worker", "worker"), _spawn("api", "serve")]
    print(_banner(settings), flush=True)
    exit_code = 0
    try:
        while not stopping:
            for name, proc in children:
                if proc.poll() is not None:
                    print(
                        f"pagely: {name} exited with code {proc.returncode}; stopping",
                        file=sys.stderr,
                    )
                    exit_code = proc.returncode or 1
                    stopping = True
            time.sleep(0.2)
    finally:
        print("pagely: stopping", flush=True)
        _stop(list(reversed(children)))
    return exit_code
