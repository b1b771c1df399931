"""`pagely run`: migrate, seed, then supervise a worker, beat and the API until Ctrl-C.

Children run in their own sessions so a terminal Ctrl-C reaches only this process, which then
stops them in order (API, beat, worker) before the embedded services are shut down; and each child
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
from collections.abc import Callable
from types import FrameType

import httpx

from pagely.core import migrations as migrate
from pagely.core.db import run_in_transaction
from pagely.settings import Settings

_PR_SET_PDEATHSIG = 1
_STOP_GRACE_SECONDS = 15.0


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec hook asking the kernel for SIGTERM when this process dies. The libc function
    is looked up here, before fork, so the hook itself only makes one system call."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


def _spawn(name: str, *args: str) -> tuple[str, subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pagely.cli", *args],
        env=os.environ.copy(),
        start_new_session=True,
        preexec_fn=_die_with_parent_hook(),
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
    children = [_spawn("worker", "worker"), _spawn("beat", "beat"), _spawn("api", "serve")]
    announced = False
    exit_code = 0
    try:
        while not stopping:
            if not announced and _answers(f"{_base_url(settings)}/health"):
                print(_banner(settings), flush=True)
                announced = True
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
