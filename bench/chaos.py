"""`make chaos`: fault drills under load, on a production-shaped topology of this machine's own.

    python -m bench.chaos            # every fault, full holds (docs/reliability.md)
    python -m bench.chaos --smoke    # every fault, short holds (CI)

Topology: PostgreSQL, Redis (denylist, rate limits, cache), a second Redis as the Celery broker
and an SMTP sink, all started here so they can be stopped, paused and restarted; two API
processes behind HAProxy (health-checking /health/ready, retrying a request whose connection
failed on the other process, answering 503 with Retry-After in the envelope when no process
can); two Celery workers and one beat. Every process is kept up by `pagely run`'s supervisor
(`Child`: a killed one is restarted after 1 s).

While the load (bench/chaos_load.py) runs, one fault at a time: kill -9 of an API process, of a
worker in the middle of sends, a PostgreSQL restart and a 10 s pause, a Redis restart and a
10 s pause, the broker unreachable for 30 s, SMTP refusing connections for 30 s. Each is
followed by a calm period; the report counts, per fault, 5xx other than 503, the 503s and how
long they lasted, the time until answers were all good again; and over the run: acknowledged
writes lost, duplicate rows from retries, emails lost and duplicated, revoked tokens accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import mailbox
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from bench import REPOSITORY
from bench.chaos_load import PASSWORD, Load, Record
from pagely.core import migrations
from pagely.devtools.dbadmin import create_database, database_url
from pagely.devtools.mail_sink import MaildirHandler
from pagely.devtools.postgres import SystemPostgres, system_postgres_bindir
from pagely.devtools.processes import free_port, wait_for_port
from pagely.devtools.redis_server import EmbeddedRedis
from pagely.devtools.supervisor import Child

RESULTS = REPOSITORY / "bench" / "results"
USERS = 8
CALM_SECONDS = 15.0

_HAPROXY = """
global
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 15s
  retries 3
  option redispatch
  # A request whose connection failed, or that got no answer at all (its process died), goes
  # to the other process: the app's writes carry Idempotency-Key, so a replay is safe.
  retry-on conn-failure empty-response
  default-server inter 500ms fall 2 rise 2
  # Readiness answers within SERVICE_TIMEOUT_SECONDS (2 s) even when a dependency hangs.
  timeout check 3s
  errorfile 502 {error}
  errorfile 503 {error}
  errorfile 504 {error}
frontend api
  bind 127.0.0.1:{port}
  default_backend pagely
backend pagely
  option httpchk GET /health/ready
  http-check expect status 200
{servers}
"""

_UNAVAILABLE = (
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
    '{"success": false, "error": {"type": "service_unavailable", "message": "No API process '
    'can answer right now; retry shortly", "details": [], "request_id": null}}\n'
)


class SmtpSink:
    """The SMTP sink on a fixed port, so it can refuse connections (stopped) and come back."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "mail"
        self.port = free_port()
        self._controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self._controller = Controller(MaildirHandler(self.dir), hostname="127.0.0.1",
                                      port=self.port)  # fmt: skip
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def received(self) -> list[tuple[str, str]]:
        """(recipient, Message-ID) of every message accepted."""
        box = mailbox.Maildir(self.dir, create=True)
        return [(str(box[key]["X-Envelope-To"]), str(box[key]["Message-ID"]))
                for key in box.iterkeys()]  # fmt: skip


class Stack:
    def __init__(self, home: Path) -> None:
        bindir = system_postgres_bindir()
        if bindir is None:
            raise SystemExit("chaos needs the machine's PostgreSQL binaries (pg_ctl)")
        self.home = home
        self.pg = SystemPostgres(home, bindir)
        self.redis = EmbeddedRedis(home / "cache")
        self.broker = EmbeddedRedis(home / "broker")
        self.smtp = SmtpSink(home)
        self.children: list[Child] = []
        self.haproxy: subprocess.Popen[bytes] | None = None
        self.port = free_port()
        self._supervising = threading.Event()

    def start(self) -> str:
        server = self.pg.start().replace("{db}", "postgres")
        self.db_url = database_url(server, "pagely_chaos")
        asyncio.run(create_database(server, "pagely_chaos", if_missing=True))
        migrations.upgrade(self.db_url)
        self.redis_url = self.redis.start()
        self.redis_port = int(self.redis_url.rsplit(":", 1)[1].split("/")[0])
        self.broker_url = self.broker.start()
        self.broker_port = int(self.broker_url.rsplit(":", 1)[1].split("/")[0])
        self.smtp.start()
        os.environ.update(self._environment())
        api_ports = [free_port(), free_port()]
        self.children = [
            *(Child(f"api-{n}", ("serve", "--port", str(p))) for n, p in enumerate(api_ports, 1)),
            Child("worker-1", ("worker",)),
            Child("worker-2", ("worker",)),
            Child("beat", ("beat",)),
        ]
        for child in self.children:
            child.start()
        threading.Thread(target=self._supervise, daemon=True).start()
        self._start_haproxy(api_ports)
        return f"http://127.0.0.1:{self.port}"

    def _environment(self) -> dict[str, str]:
        from pagely.settings import Settings

        limits = [name.upper() for name in Settings.model_fields if name.startswith("rate_limit_")]
        lifted = dict.fromkeys(limits, "1000000/minute")  # one client address drives it all
        return {
            **lifted,
            "ENVIRONMENT": "staging",
            "JWT_SECRET": "chaos-" + "k" * 58,
            "DATABASE_URL": self.db_url,
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.broker_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp.port),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_JSON": "true",
            "LOG_LEVEL": "WARNING",
            # Retries fast enough to ride out a 30 s SMTP outage within the drill.
            "OUTBOX_RETRY_BASE_SECONDS": "1",
            "OUTBOX_RETRY_MAX_SECONDS": "8",
            "OUTBOX_MAX_ATTEMPTS": "30",
            "OUTBOX_REDISPATCH_AFTER_SECONDS": "10",
            "OUTBOX_SWEEP_INTERVAL_SECONDS": "2",
            "PYTHONPATH": str(REPOSITORY / "src"),
        }

    def _start_haproxy(self, api_ports: list[int]) -> None:
        error = self.home / "503.http"
        error.write_text(_UNAVAILABLE)
        servers = "\n".join(
            f"  server api{n} 127.0.0.1:{port} check" for n, port in enumerate(api_ports, 1)
        )
        config = self.home / "haproxy.cfg"
        config.write_text(_HAPROXY.format(port=self.port, error=error, servers=servers))
        self.haproxy = subprocess.Popen(
            ["haproxy", "-f", str(config), "-db"],
            stdout=(self.home / "haproxy.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, 10, "HAProxy", self.haproxy)

    def _supervise(self) -> None:
        self._supervising.set()
        while self._supervising.is_set():
            now = time.monotonic()
            for child in self.children:
                child.check(now)
            time.sleep(0.2)

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def wait_ready(self, base: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit("the chaos stack did not become ready")

    def pg_processes(self) -> list[psutil.Process]:
        pid = int((self.pg.datadir / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        return [postmaster, *postmaster.children(recursive=True)]

    def stop(self) -> None:
        self._supervising.clear()
        for child in reversed(self.children):
            if child.proc is not None and child.proc.poll() is None:
                os.killpg(child.proc.pid, signal.SIGTERM)
        for child in self.children:
            if child.proc is not None:
                try:
                    child.proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(child.proc.pid, signal.SIGKILL)
        if self.haproxy is not None:
            self.haproxy.terminate()
            self.haproxy.wait(10)
        self.smtp.stop()
        self.broker.stop()
        self.redis.stop()
        self.pg.stop()


# --- the faults --------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[], None]
    restore: Callable[[], None]
    hold: float  # seconds between inject and restore


def _signal_all(processes: list[psutil.Process], sig: signal.Signals) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(sig)


def faults(stack: Stack, *, smoke: bool) -> list[Fault]:
    pause = 3.0 if smoke else 10.0
    outage = 5.0 if smoke else 30.0
    paused: list[psutil.Process] = []

    def nothing() -> None:
        return None

    def kill(name: str) -> Callable[[], None]:
        def act() -> None:
            proc = stack.child(name).proc
            assert proc is not None
            os.killpg(proc.pid, signal.SIGKILL)

        return act

    def pg_pause() -> None:
        paused[:] = stack.pg_processes()
        _signal_all(paused, signal.SIGSTOP)

    def pg_resume() -> None:
        _signal_all(paused, signal.SIGCONT)

    def redis_restart() -> None:
        stack.redis.stop()
        stack.redis.start(stack.redis_port)

    def broker_back() -> None:
        stack.broker.start(stack.broker_port)

    def redis_pause() -> None:
        assert stack.redis.proc is not None
        os.kill(stack.redis.proc.pid, signal.SIGSTOP)

    def redis_resume() -> None:
        assert stack.redis.proc is not None
        os.kill(stack.redis.proc.pid, signal.SIGCONT)

    return [
        Fault("kill -9 of an API process", kill("api-1"), nothing, 0),
        Fault("kill -9 of a worker mid-send", kill("worker-1"), nothing, 0),
        Fault("PostgreSQL restart (fast)", stack.pg.restart, nothing, 0),
        Fault(f"PostgreSQL paused {pause:g} s", pg_pause, pg_resume, pause),
        Fault("Redis restart", redis_restart, nothing, 0),
        Fault(f"Redis paused {pause:g} s", redis_pause, redis_resume, pause),
        Fault(f"broker unreachable {outage:g} s", stack.broker.stop, broker_back, outage),
        Fault(f"SMTP refusing {outage:g} s", stack.smtp.stop, stack.smtp.start, outage),
    ]


# --- the drill ---------------------------------------------------------------------------


@dataclass
class FaultReport:
    fault: str
    answers: int
    other_5xx: int
    unanswered: int
    shed_503: int
    seconds_of_503: float
    seconds_to_all_good: float
    failed_by_kind: dict[str, int]  # 503s and unanswered, by what was asked


@contextmanager
def _load_in_thread(
    load: Load, book_ids: list[str], stop: threading.Event
) -> Iterator[list[Record]]:
    out: list[Record] = []
    thread = threading.Thread(
        target=lambda: out.append(asyncio.run(load.run(book_ids, stop))), daemon=True
    )
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join(120)


async def _seed(db_url: str) -> list[str]:
    """Verified users for the load, and a few books to read."""
    from pagely.core.hashing import hash_password

    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        password_hash = await hash_password(PASSWORD)
        emails = [f"chaos-user-{n}@example.com" for n in range(USERS)]
        for email in emails:
            await conn.execute(
                "INSERT INTO users (id, email, name, password_hash, role, is_verified, is_active,"
                " token_version, email_on_review) VALUES (gen_random_uuid(), $1, 'Chaos User',"
                " $2, 'user', true, true, 0, false) ON CONFLICT (email) DO NOTHING",
                email, password_hash,
            )  # fmt: skip
        return emails
    finally:
        await conn.close()


def _books(base: str, email: str) -> list[str]:
    pair = httpx.post(f"{base}/api/v1/auth/signin", json={"email": email, "password": PASSWORD})
    auth = {"Authorization": f"Bearer {pair.json()['access_token']}"}
    ids = []
    for n in range(20):
        body = {"title": f"A history of chaos {n}", "authors": ["Seed"]}
        made = httpx.post(f"{base}/api/v1/books", headers=auth, json=body)
        ids.append(made.json()["id"])
    return ids


def _report(name: str, answers: list[Any], restored_at: float) -> FaultReport:
    mine = [a for a in answers if a.phase == name]
    bad = [a for a in mine if a.status == 0 or a.status >= 500]
    shed = [a for a in mine if a.status == 503]
    last_bad = max((a.at for a in bad), default=restored_at)
    return FaultReport(
        fault=name,
        answers=len(mine),
        other_5xx=sum(1 for a in mine if a.status >= 500 and a.status != 503),
        unanswered=sum(1 for a in mine if a.status == 0),
        shed_503=len(shed),
        seconds_of_503=round(max(a.at for a in shed) - min(a.at for a in shed), 2) if shed else 0.0,
        seconds_to_all_good=round(max(0.0, last_bad - restored_at), 2),
        failed_by_kind=dict(Counter(a.kind for a in bad)),
    )


async def _lost_and_duplicated(db_url: str, record: Record) -> tuple[int, int]:
    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT id::text, title FROM books WHERE title LIKE 'chaos %'")
    finally:
        await conn.close()
    present = {row["id"] for row in rows}
    lost = sum(1 for book_id in record.created.values() if book_id not in present)
    duplicates = sum(n - 1 for n in Counter(row["title"] for row in rows).values() if n > 1)
    return lost, duplicates


async def _outbox_settled(db_url: str, within: float) -> int:
    """Wait for every email to be sent (or failed); how many are still pending."""
    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + within
        while True:
            pending = int(
                await conn.fetchval("SELECT count(*) FROM outbox WHERE status = 'pending'")
            )
            if pending == 0 or time.monotonic() > deadline:
                return pending
            await asyncio.sleep(1)
    finally:
        await conn.close()


def drill(smoke: bool) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="pagely-chaos-"))
    stack = Stack(home)
    phase = ["calm"]
    try:
        base = stack.start()
        emails = asyncio.run(_seed(stack.db_url))
        stack.wait_ready(base)
        book_ids = _books(base, emails[0])
        load = Load(base, lambda: phase[0], emails)
        stop = threading.Event()
        reports = []
        calm = 5.0 if smoke else CALM_SECONDS
        with _load_in_thread(load, book_ids, stop) as out:
            time.sleep(calm)
            for fault in faults(stack, smoke=smoke):
                print(f"chaos: {fault.name}", flush=True)
                phase[0] = fault.name
                fault.inject()
                time.sleep(fault.hold)
                fault.restore()
                restored = time.monotonic()
                time.sleep(calm)
                phase[0] = "calm"
                reports.append((fault.name, restored))
        record = out[0]
        pending = asyncio.run(_outbox_settled(stack.db_url, 120))
        time.sleep(2)
        received = stack.smtp.received()
        messages = Counter(to for to, _ in set(received))  # distinct messages per address
        deliveries = Counter(received)  # each message, how often it arrived
        lost, duplicates = asyncio.run(_lost_and_duplicated(stack.db_url, record))
        expected = set(record.registered)
        return {
            "faults": [asdict(_report(name, record.answers, at)) for name, at in reports],
            "answers": len(record.answers),
            "writes_acknowledged": len(record.created),
            "writes_lost": lost,
            "duplicate_rows": duplicates,
            "registrations": len(expected),
            "emails_lost": sum(1 for e in expected if messages[e] == 0),
            # Two messages to one address: the email was sent twice over (must never happen).
            "emails_duplicated": sum(messages[e] - 1 for e in expected if messages[e] > 1),
            # One message arriving twice: a worker died between the SMTP server's 250 and the
            # commit, and the message went again with its Message-ID (mail clients show one).
            "emails_redelivered": sum(n - 1 for n in deliveries.values() if n > 1),
            "emails_pending_at_end": pending,
            "revoked_tokens_checked": record.revoked_checked,
            "revoked_tokens_accepted": record.revoked_accepted,
        }
    finally:
        stack.stop()


def table(result: dict[str, Any]) -> str:
    lines = [
        "| Fault | answers | 5xx but 503 | no answer | 503 | 503 lasted s | all good after s "
        "| failed, by request |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for f in result["faults"]:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(f["failed_by_kind"].items())) or "-"
        lines.append(
            f"| {f['fault']} | {f['answers']} | {f['other_5xx']} | {f['unanswered']} | "
            f"{f['shed_503']} | {f['seconds_of_503']} | {f['seconds_to_all_good']} | {kinds} |"
        )
    lines.append("")
    for key in ("answers", "writes_acknowledged", "writes_lost", "duplicate_rows",
                "registrations", "emails_lost", "emails_duplicated", "emails_redelivered",
                "emails_pending_at_end",
                "revoked_tokens_checked", "revoked_tokens_accepted"):  # fmt: skip
        lines.append(f"- {key.replace('_', ' ')}: {result[key]}")
    return "\n".join(lines)


def must_be_zero(result: dict[str, Any]) -> list[str]:
    problems = [f"{f['fault']}: {f['other_5xx']} 5xx other than 503"
                for f in result["faults"] if f["other_5xx"]]  # fmt: skip
    for key in ("writes_lost", "duplicate_rows", "emails_lost", "emails_duplicated",
                "revoked_tokens_accepted"):  # fmt: skip
        if result[key]:
            problems.append(f"{key.replace('_', ' ')}: {result[key]}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description="Pagely fault drills (docs/reliability.md)")
    parser.add_argument("--smoke", action="store_true", help="short holds (CI)")
    smoke = parser.parse_args().smoke
    for tool in ("haproxy",):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            print(f"{tool} is not installed: run `make chaos-deps`", file=sys.stderr)
            return 2
    result = drill(smoke)
    print()
    print(table(result))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"chaos-{datetime.now(UTC):%Y%m%dT%H%M%SZ}{'-smoke' if smoke else ''}.json"
    path.write_text(json.dumps({"smoke": smoke, **result}, indent=2))
    print(f"results: {path.relative_to(REPOSITORY)}")
    problems = must_be_zero(result)
    for problem in problems:
        print(f"MUST BE 0: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
