"""Shared test support (imported by tests/conftest.py): users and sign-in helpers, and for
the outbox a real SMTP server (aiosmtpd) that tests can make refuse, stall
or go away, and real Celery worker processes (`pagely worker`) against the test database and
Redis, which tests can stop, SIGKILL and restart."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from pagely.app import create_app
from pagely.core.db import transaction
from pagely.core.hashing import hash_password
from pagely.core.outbox import enqueue_email
from pagely.core.resources import Resources
from pagely.devtools.embedded import EmbeddedRedis, free_port
from pagely.models.outbox import OutboxMessage
from pagely.models.user import User
from pagely.settings import Settings

PUBLIC_BASE_URL = "https://books.example.test"


class SmtpSink:
    """An SMTP server in a thread. Records every accepted message; can refuse the next N with
    a temporary or permanent error, stall inside DATA (to kill a client mid-send), or stop."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.credentials = credentials
        self.messages: list[EmailMessage] = []
        self.refuse_next = 0
        self.refuse_code = "451 4.3.0 Try again later"
        self.stall_next = False
        self.stalled = threading.Event()  # set when a stalled DATA has started
        self.abandoned = 0  # stalled transactions whose client went away
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> None:
        auth: dict[str, Any] = {}
        if self.credentials:
            auth = {"authenticator": self._authenticate, "auth_required": True,
                    "auth_require_tls": False}  # fmt: skip
        with warnings.catch_warnings():  # AUTH without TLS: fine on loopback in a test
            warnings.simplefilter("ignore", UserWarning)
            self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **auth)
        self._controller.start()

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:  # fmt: skip
        assert self.credentials
        login, password = (value.encode() for value in self.credentials)
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            login, password,
        )  # fmt: skip
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        with self._lock:
            if self.refuse_next > 0:
                self.refuse_next -= 1
                return self.refuse_code
            stall, self.stall_next = self.stall_next, False
        if stall:
            self.stalled.set()
            try:
                await asyncio.sleep(120)
            except asyncio.CancelledError:
                with self._lock:
                    self.abandoned += 1
                raise
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self._lock:
            self.messages.append(message)
        return "250 2.0.0 Accepted"

    def received(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received()
            if len(got) >= count:
                return got
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {count} messages, got {len(self.received())}")


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path, *, beat: bool, cwd: Path) -> None:
        self.log_path = log_path
        args = [sys.executable, "-m", "pagely.cli", "worker", "--concurrency=2"]
        if beat:
            args.append("--beat")
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log_text():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"worker not ready in {timeout}s:\n{self.log_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), like a dead machine."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        """Warm shutdown, as a process manager does it: SIGTERM to the main process, which
        lets running tasks finish and stops its pool."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


# Settings the worker must not inherit from the developer's shell.
_SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def worker_env(settings: Settings, sink: SmtpSink | None, **overrides: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SETTING_NAMES}
    env.update(
        ENVIRONMENT="test",
        DATABASE_URL=settings.require("database_url"),
        REDIS_URL=settings.require("redis_url"),
        CELERY_BROKER_URL=settings.broker_url or "",
        CELERY_QUEUE=settings.celery_queue,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(sink.port if sink else free_port()),
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        LOG_JSON="true",
        LOG_LEVEL="INFO",
        OUTBOX_RETRY_BASE_SECONDS="0.2",
        OUTBOX_RETRY_MAX_SECONDS="1",
        OUTBOX_REDISPATCH_AFTER_SECONDS="1",
        OUTBOX_SWEEP_INTERVAL_SECONDS="0.5",
        OUTBOX_MAX_ATTEMPTS="5",
    )
    env.update({k.upper(): str(v) for k, v in overrides.items()})
    return env


StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def start_worker(settings: Settings, smtp_sink: SmtpSink, tmp_path: Path) -> Iterator[StartWorker]:
    """Start `pagely worker` (ready when it returns); every one started is stopped after."""
    started: list[WorkerProcess] = []

    def start(*, beat: bool = False, **overrides: Any) -> WorkerProcess:
        env = worker_env(settings, smtp_sink, **overrides)
        worker = WorkerProcess(env, tmp_path / "worker.log", beat=beat, cwd=tmp_path)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()


async def enqueue(
    resources: Resources,
    *,
    to: str = "reader@example.com",
    template: str = "verify_email",
    context: dict[str, Any] | None = None,
    key: str | None = None,
) -> uuid.UUID:
    async with transaction(resources.sessionmaker) as session:
        outbox_id = await enqueue_email(
            session,
            template=template,
            to=to,
            context=context if context is not None else default_context(),
            key=key or f"test:{uuid.uuid4()}",
        )
    assert outbox_id is not None
    return outbox_id


def default_context(token: str = "tok-SECRET-123") -> dict[str, Any]:
    return {"name": "Ada Reader", "token": token, "valid_hours": 48}


async def outbox_row(resources: Resources, outbox_id: uuid.UUID) -> OutboxMessage:
    async with resources.sessionmaker() as session:
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.id == outbox_id))
        assert row is not None
        return row


async def wait_for_status(
    resources: Resources, outbox_id: uuid.UUID, status: str, timeout: float = 20.0
) -> OutboxMessage:
    deadline = time.monotonic() + timeout
    while True:
        row = await outbox_row(resources, outbox_id)
        if row.status == status:
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"outbox row is {row.status}, expected {status}")
        await asyncio.sleep(0.1)


async def make_user(
    resources: Resources,
    *,
    email: str | None = None,
    password: str = "a-good-long-password",
    role: str = "user",
    verified: bool = True,
    name: str = "Test Reader",
) -> User:
    user = User(
        email=(email or f"user-{uuid.uuid4().hex[:8]}@example.com").lower(),
        name=name,
        password_hash=await hash_password(password),
        role=role,
        is_verified=verified,
    )
    async with transaction(resources.sessionmaker) as session:
        session.add(user)
    return user


async def sign_in(client: httpx.AsyncClient, email: str,
                  password: str = "a-good-long-password") -> dict[str, Any]:  # fmt: skip
    response = await client.post("/api/v1/auth/signin", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def headers_for(client: httpx.AsyncClient, resources: Resources, role: str = "user",
                      verified: bool = True) -> dict[str, str]:  # fmt: skip
    user = await make_user(resources, role=role, verified=verified)
    return bearer((await sign_in(client, user.email))["access_token"])


@pytest.fixture
async def admin_headers(client: httpx.AsyncClient, resources: Resources) -> dict[str, str]:
    return await headers_for(client, resources, role="admin")


@asynccontextmanager
async def app_client(settings: Settings, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app of its own, with some settings changed (limits, proxies, Redis)."""
    app = create_app(settings.model_copy(update=overrides))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis server of the test's own, to pause (SIGSTOP), stop and restart."""
    server = EmbeddedRedis(tmp_path)
    yield server
    if server.proc is not None and server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()


async def wait_for_counter(
    resources: Resources, name: str, value: int, timeout: float = 5.0
) -> dict[str, int]:
    """The worker counts a delivery just after committing it: poll, do not race it."""
    from pagely.core import metrics

    deadline = time.monotonic() + timeout
    while True:
        counters = await metrics.read_counters(resources.redis)
        if counters.get(name) == value or time.monotonic() > deadline:
            return counters
        await asyncio.sleep(0.05)


UNLIMITED = "1000000/minute"


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve `app` on a real socket (uvicorn on a thread with its own event loop)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "live server exited"
        assert time.monotonic() < deadline, "live server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def live_server(settings: Settings) -> Iterator[str]:
    """The API on a socket for clients that cannot call ASGI directly, with rate limits
    lifted so generated traffic is not refused."""
    overrides = {
        name: UNLIMITED for name in Settings.model_fields if name.startswith("rate_limit_")
    }
    with serve(create_app(settings.model_copy(update=overrides))) as url:
        yield url
