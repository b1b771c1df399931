"""Test harness: real PostgreSQL and Redis.

Service URLs come from TEST_DATABASE_URL / TEST_REDIS_URL; when unset, the controller process
starts (or attaches to) the embedded services with the same code as `make run`. The controller
migrates one template database with Alembic; each xdist worker clones it into its own database
and uses its own Redis database index. Between tests every table is truncated and Redis flushed.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import text

from pagely.app import create_app
from pagely.core.clock import clock
from pagely.core.resources import Resources
from pagely.devtools.dbadmin import create_database, drop_database
from pagely.devtools.dbadmin import database_url as database_url_for
from pagely.models import metadata
from pagely.settings import Settings
from pagely.worker.celery import create_resources
from tests.fixtures import contract
from tests.fixtures.apps import asgi_client, make_settings

# The fixtures every package shares (signed-in headers, the SMTP sink, Celery workers, live
# servers, measurements), registered by module rather than imported name by name.
pytest_plugins = [
    "tests.fixtures.accounts",
    "tests.fixtures.browser",
    "tests.fixtures.measurements",
    "tests.fixtures.proxy",
    "tests.fixtures.servers",
    "tests.fixtures.smtp",
    "tests.fixtures.worker",
]

RUN_ID_VAR = "PAGELY_TEST_RUN_ID"


def _template_name() -> str:
    return f"pagely_test_{os.environ[RUN_ID_VAR]}_template"


def pytest_configure(config: pytest.Config) -> None:
    # The suite says its environment (the default is production) and shares one signing key
    # with every process it starts (xdist workers and pagely subprocesses inherit both).
    os.environ["ENVIRONMENT"] = "test"
    os.environ.setdefault("JWT_SECRET", secrets.token_urlsafe(48))
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controller prepared everything and exported it
    os.environ.setdefault(RUN_ID_VAR, str(os.getpid()))
    errors_dir = Path(tempfile.mkdtemp(prefix="pagely-errors-"))
    os.environ[contract.LOG_DIR_VAR] = str(errors_dir)
    config.stash[_errors_key] = errors_dir
    if not (os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL")):
        from pagely.devtools.embedded import DevStack

        stack = DevStack(
            want_postgres=not os.environ.get("TEST_DATABASE_URL"),
            want_redis=not os.environ.get("TEST_REDIS_URL"),
            want_smtp=False,
        ).__enter__()
        config.stash[_stack_key] = stack
        if "DATABASE_URL" in stack.env:
            os.environ["TEST_DATABASE_URL"] = stack.env["DATABASE_URL"]
        if "REDIS_URL" in stack.env:
            os.environ["TEST_REDIS_URL"] = stack.env["REDIS_URL"]
    server_url = os.environ["TEST_DATABASE_URL"]
    asyncio.run(drop_database(server_url, _template_name()))
    asyncio.run(create_database(server_url, _template_name()))
    from pagely.core import migrations as migrate

    migrate.upgrade(database_url_for(server_url, _template_name()))


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    if os.environ.get("TEST_DATABASE_URL"):
        asyncio.run(drop_database(os.environ["TEST_DATABASE_URL"], _template_name()))
    stack = config.stash.get(_stack_key, None)
    if stack is not None:
        stack.__exit__(None, None, None)


_stack_key = pytest.StashKey[Any]()
_errors_key = pytest.StashKey[Path]()
_undeclared_key = pytest.StashKey[list[str]]()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Every error a test received is one the contract declares (fixtures/contract.py)."""
    errors_dir = session.config.stash.get(_errors_key, None)
    if errors_dir is None:
        return  # an xdist worker: the controller checks what every worker logged
    observed = contract.read_observed(errors_dir)
    shutil.rmtree(errors_dir, ignore_errors=True)
    problems = contract.undeclared(observed, contract.CONTRACT.read_text())
    session.config.stash[_undeclared_key] = problems
    if problems and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    problems = config.stash.get(_undeclared_key, [])
    if problems:
        terminalreporter.write_sep("=", "contract: errors answered but not declared", red=True)
        for problem in problems:
            terminalreporter.write_line(f"  {problem}")


def _worker_index(worker_id: str) -> int:
    return 0 if worker_id == "master" else int(worker_id.removeprefix("gw"))


@pytest.fixture(scope="session")
def worker_id_str(request: pytest.FixtureRequest) -> str:
    workerinput = getattr(request.config, "workerinput", None)
    return "master" if workerinput is None else str(workerinput["workerid"])


@pytest.fixture(scope="session")
async def database_url(worker_id_str: str) -> AsyncIterator[str]:
    server_url = os.environ["TEST_DATABASE_URL"]
    name = f"pagely_test_{os.environ[RUN_ID_VAR]}_{worker_id_str}"
    await drop_database(server_url, name)
    await create_database(server_url, name, template=_template_name())
    yield database_url_for(server_url, name)
    await drop_database(server_url, name)


@pytest.fixture(scope="session")
def redis_url(worker_id_str: str) -> str:
    # Database 0 belongs to `make run`; each xdist worker gets its own index from 1 up
    # (PAGELY_TEST_REDIS_DB_BASE moves the range, so two suites can share one Redis).
    index = int(os.environ.get("PAGELY_TEST_REDIS_DB_BASE", "1")) + _worker_index(worker_id_str)
    return str(make_url_redis(os.environ["TEST_REDIS_URL"], index))


def make_url_redis(url: str, index: int) -> str:
    base, _, _ = url.partition("?")
    scheme, _, rest = base.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{index}"


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    return make_settings(database_url, redis_url)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture(scope="session")
def resources(app: FastAPI) -> Resources:
    res: Resources = app.state.resources
    return res


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c


@pytest.fixture(scope="session")
async def db_cleaner(settings: Settings) -> AsyncIterator[Resources]:
    """Its own connections, so cleaning works whichever app a test used."""
    cleaner = create_resources(settings)
    yield cleaner
    await cleaner.close()


@pytest.fixture(autouse=True)
def _real_time() -> Iterator[None]:
    """Every test starts on the real clock, whatever the one before it advanced."""
    clock.reset()
    yield
    clock.reset()


@pytest.fixture(autouse=True)
async def _clean_state(db_cleaner: Resources) -> AsyncIterator[None]:
    yield
    # The built-in roles are reference data the migrations write: kept, the custom ones go.
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables if t.name != "roles")
    async with db_cleaner.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await conn.execute(text("DELETE FROM roles WHERE NOT built_in"))
    await db_cleaner.redis.flushdb()


@pytest.fixture
def redis(resources: Resources) -> Redis:
    return resources.redis
