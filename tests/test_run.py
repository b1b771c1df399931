"""`pagely run` (what `make run` calls) on embedded defaults: serves, then Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from pagely.devtools.processes import free_port


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "pagely run exited early"
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError("not ready in time")


def _started_processes(proc: subprocess.Popen[bytes], home: Path) -> list[psutil.Process]:
    tree = psutil.Process(proc.pid).children(recursive=True)
    # The embedded PostgreSQL daemonises away from our tree: find it by its data directory.
    for candidate in psutil.process_iter(["cmdline"]):
        if str(home) in " ".join(candidate.info["cmdline"] or []):
            tree.append(candidate)
    return tree


def _swagger_journey(base: str) -> None:
    """What a person does in Swagger: register, open the mail page, click the verification
    link, Authorize (the OAuth2 password form) and call /auth/me."""
    email = f"swagger-{uuid.uuid4().hex[:6]}@example.com"
    registered = httpx.post(
        f"{base}/api/v1/auth/register",
        json={"email": email, "password": "a-good-long-password", "name": "Swagger User"},
    )
    assert registered.status_code == 202
    deadline = time.monotonic() + 15
    while not (mail := [m for m in httpx.get(f"{base}/dev/mail.json").json() if email in m["to"]]):
        assert time.monotonic() < deadline, "the verification email never reached the mail page"
        time.sleep(0.2)
    [link] = [link for link in mail[0]["links"] if "/auth/verify/" in link]
    page = httpx.get(base + urlsplit(link).path)
    assert page.status_code == 200
    assert "verified" in page.text.lower()

    schemes = httpx.get(f"{base}/openapi.json").json()["components"]["securitySchemes"]
    token_url = next(iter(schemes.values()))["flows"]["password"]["tokenUrl"]
    authorized = httpx.post(
        base + token_url, data={"username": email, "password": "a-good-long-password"}
    )
    assert authorized.status_code == 200
    me = httpx.get(
        f"{base}/api/v1/auth/me",
        headers={"Authorization": f"Bearer {authorized.json()['access_token']}"},
    )
    assert (me.status_code, me.json()["email"], me.json()["is_verified"]) == (200, email, True)


def _send_test_email(env: dict[str, str], base: str, to: str) -> list[dict[str, Any]]:
    """`pagely send-test-email` to `to`, then the mail page's messages once it shows there."""
    queued = subprocess.run(
        [sys.executable, "-m", "pagely.cli", "send-test-email", to],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert queued.returncode == 0, queued.stderr
    deadline = time.monotonic() + 30
    while True:
        mine: list[dict[str, Any]] = [
            m for m in httpx.get(f"{base}/dev/mail.json").json() if m["to"] == [to]
        ]
        if mine:
            return mine
        assert time.monotonic() < deadline, f"the test email to {to} never reached the mail page"
        time.sleep(0.2)


def _worker_killed_and_restarted(
    proc: subprocess.Popen[bytes], env: dict[str, str], base: str, log_path: Path
) -> psutil.Process:
    """kill -9 of the worker (an OOM kill): the API keeps answering, the supervisor says so
    and starts another worker, which delivers mail. The new worker."""

    def command(process: psutil.Process) -> str:
        try:
            return " ".join(process.cmdline())
        except psutil.Error:  # gone, or a zombie the supervisor has not reaped yet
            return ""

    def workers() -> list[psutil.Process]:
        return [p for p in psutil.Process(proc.pid).children()
                if "pagely.cli worker" in command(p)]  # fmt: skip

    [worker] = workers()
    worker.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not (fresh := [w for w in workers() if w.pid != worker.pid]):
        assert proc.poll() is None, "pagely run stopped when its worker died"
        assert httpx.get(f"{base}/health", timeout=5).status_code == 200
        assert time.monotonic() < deadline, "the worker was not restarted"
        time.sleep(0.2)
    assert "worker exited with signal 9; restarting in 1 s" in log_path.read_text()
    _send_test_email(env, base, "after-restart@example.com")  # the new worker delivers it
    [new_worker] = fresh
    return new_worker


@pytest.mark.slow
def test_run_serves_the_api_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SMTP_HOST"}
    }
    env.update(PAGELY_HOME=str(tmp_path), PORT=str(port), ENVIRONMENT="development")
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "run.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pagely.cli", "run"],
        env=env,
        start_new_session=True,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(base, proc)
        assert httpx.get(f"{base}/docs").status_code == 200
        assert httpx.get(f"{base}/dev/mail.json").json() == []
        started = _started_processes(proc, tmp_path)
        commands = [" ".join(p.cmdline()) for p in started]
        for role in ("pagely.cli worker", "pagely.cli beat", "pagely.cli serve"):
            assert any(role in command for command in commands), role

        # A message enqueued through the outbox shows on the mail page within seconds.
        mail = _send_test_email(env, base, "dev@example.com")
        assert mail[0]["to"] == ["dev@example.com"]
        assert mail[0]["subject"] == "Pagely test message"

        _swagger_journey(base)
        new_worker = _worker_killed_and_restarted(proc, env, base, log_path)
        started = [p for p in started if p.is_running()] + _started_processes(proc, tmp_path)
        assert new_worker in started

        assert any("postgres" in p.name() for p in started)
        assert any("redis-server" in p.name() for p in started)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert proc.wait(60) == 0
        _, alive = psutil.wait_procs(started, timeout=15)
        assert alive == [], f"left behind: {[p.info for p in alive]}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
