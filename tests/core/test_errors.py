"""Every error answers the one envelope, with the request id, and a 500 tells the client nothing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict, EmailStr
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from pagely.app import create_app
from pagely.core.db import SessionDep
from pagely.core.errors import Conflict
from pagely.core.http import prefers_json
from pagely.models import User
from pagely.settings import Settings
from tests.fixtures.apps import asgi_client


class ProbeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    name: str


probe = APIRouter(prefix="/api/v1/_probe")


@probe.post("/echo")
async def echo(body: ProbeBody) -> ProbeBody:
    return body


@probe.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals: password=hunter2")


class _ShuttingDown(Exception):
    """What asyncpg reports while PostgreSQL shuts down (CannotConnectNowError), as the
    driver adapter hands it to SQLAlchemy: a plain DBAPI error with its SQLSTATE."""

    sqlstate = "57P03"


class _BadStatement(Exception):
    sqlstate = "42601"  # a syntax error: a fault in the code, not an outage


@probe.get("/db/{state}")
async def db_error(state: str) -> None:
    orig = _ShuttingDown() if state == "shutting-down" else _BadStatement()
    raise DBAPIError("SELECT 1", None, orig)


@probe.get("/conflict")
async def conflict() -> None:
    raise Conflict("That already exists")


@probe.post("/users")
async def add_user(session: SessionDep, fail: bool = False) -> dict[str, str]:
    session.add(User(email="probe@example.com", name="Probe", password_hash="x"))
    await session.flush()
    if fail:
        raise Conflict("rolled back")
    return {"status": "created"}


@pytest.fixture(scope="module")
async def probe_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    app.include_router(probe)
    async with LifespanManager(app):
        yield app


@pytest.fixture
async def probe_client(probe_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(probe_app) as c:
        yield c


def assert_envelope(response: httpx.Response, status: int, type_: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["type"] == type_
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert isinstance(body["error"]["message"], str)
    error: dict[str, object] = body["error"]
    return error


async def test_a_database_that_is_shutting_down_is_a_503_not_a_500(
    probe_client: httpx.AsyncClient,
) -> None:
    """Found by `make chaos` during a PostgreSQL restart: the error class alone says nothing."""
    down = await probe_client.get("/api/v1/_probe/db/shutting-down")
    assert down.status_code == 503
    assert down.headers["Retry-After"]
    assert down.json()["error"]["type"] == "service_unavailable"
    assert "database" in down.json()["error"]["message"]
    broken = await probe_client.get("/api/v1/_probe/db/bad-statement")
    assert broken.status_code == 500


async def test_unknown_route_is_a_404_envelope(client: httpx.AsyncClient) -> None:
    assert_envelope(await client.get("/api/v1/does-not-exist"), 404, "not_found")


async def test_wrong_method_is_a_405_envelope(client: httpx.AsyncClient) -> None:
    assert_envelope(await client.delete("/health"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/health", "GET, HEAD"),
        ("PUT", "/api/v1/books", "GET, HEAD, POST"),
        ("POST", "/api/v1/books/00000000-0000-4000-8000-000000000000",
         "GET, HEAD, PUT, PATCH, DELETE"),
    ],
)  # fmt: skip
async def test_a_405_names_every_method_the_path_takes(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path)
    assert_envelope(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allow


async def test_head_answers_like_get_without_a_body(client: httpx.AsyncClient) -> None:
    for path in ("/health", "/api/v1/books?limit=2", "/api/v1/tags"):
        got, head = await client.get(path), await client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b""
        for name in ("content-type", "content-length", "etag", "cache-control"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)
    missing = await client.head("/api/v1/books/00000000-0000-4000-8000-000000000000")
    assert (missing.status_code, missing.content) == (404, b"")


async def test_a_body_that_is_not_json_is_a_415(probe_client: httpx.AsyncClient) -> None:
    bodies = [("text/plain", b"hello"),
              ("application/x-www-form-urlencoded", b"email=a%40b.c&name=x")]  # fmt: skip
    for content_type, body in bodies:
        response = await probe_client.post(
            "/api/v1/_probe/echo", content=body, headers={"content-type": content_type}
        )
        assert_envelope(response, 415, "unsupported_media_type")
    # JSON that does not validate is still a 422, and a form route still takes its form.
    response = await probe_client.post("/api/v1/_probe/echo", json={"email": "nope"})
    assert_envelope(response, 422, "validation_error")


async def test_malformed_json_is_a_422_envelope(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/api/v1/_probe/echo", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    error = assert_envelope(response, 422, "validation_error")
    assert error["details"] == [{"field": "body", "message": "Malformed JSON body"}]
    # A body that is not even text (invalid UTF-8) is the same 422, not a bare 400.
    response = await probe_client.post(
        "/api/v1/_probe/echo", content=b'{"email": "\xff"}',
        headers={"content-type": "application/json"},
    )  # fmt: skip
    error = assert_envelope(response, 422, "validation_error")
    assert error["details"] == [{"field": "body", "message": "Malformed body"}]


def test_every_error_type_the_code_names_is_registered() -> None:
    """The types passed as `type_=` literals, or named as constants, are in the registry the
    contract's ErrorType enum is made from."""
    import ast
    from pathlib import Path

    import pagely
    import pagely.app  # every feature's errors, as the app imports them
    from pagely.core.errors import error_types

    named = set()
    for path in Path(pagely.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.keyword) and node.arg == "type_"):
                continue
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                named.add(node.value.value)
    assert named, "no type_= literal found: the scan is broken"
    assert named <= set(error_types()), named - set(error_types())


async def test_validation_errors_name_the_field(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/api/v1/_probe/echo", json={"email": "not-an-email", "name": "x", "role": "admin"}
    )
    error = assert_envelope(response, 422, "validation_error")
    fields = {d["field"] for d in error["details"]}  # type: ignore[attr-defined]
    assert fields == {"body.email", "body.role"}


async def test_app_errors_keep_their_status_and_type(probe_client: httpx.AsyncClient) -> None:
    error = assert_envelope(await probe_client.get("/api/v1/_probe/conflict"), 409, "conflict")
    assert error["message"] == "That already exists"


async def test_body_over_the_limit_is_a_413_envelope(probe_client: httpx.AsyncClient) -> None:
    big = b'{"email": "a@b.co", "name": "' + b"x" * 2_000_000 + b'"}'
    response = await probe_client.post(
        "/api/v1/_probe/echo", content=big, headers={"content-type": "application/json"}
    )
    assert_envelope(response, 413, "payload_too_large")


async def test_streamed_body_over_the_limit_is_a_413_without_content_length(
    probe_client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "a@b.co", "name": "'
        for _ in range(40):
            yield b"x" * 50_000
        yield b'"}'

    response = await probe_client.post(
        "/api/v1/_probe/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_envelope(response, 413, "payload_too_large")


async def test_unexpected_exception_is_a_generic_500_logged_with_request_id(
    probe_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await probe_client.get(
            "/api/v1/_probe/boom", headers={"X-Request-ID": "req-500"}
        )
    error = assert_envelope(response, 500, "internal_error")
    assert error["message"] == "Internal server error"
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    logged = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    failure = next(e for e in logged if e.get("event") == "unhandled_exception")
    assert failure["request_id"] == "req-500"
    assert failure["path"] == "/api/v1/_probe/boom"
    assert failure.get("exc_info") is not None


async def test_session_commits_when_the_handler_succeeds(
    probe_client: httpx.AsyncClient, probe_app: FastAPI
) -> None:
    assert (await probe_client.post("/api/v1/_probe/users")).status_code == 200
    assert await _user_count(probe_app) == 1


async def test_session_rolls_back_when_the_handler_raises(
    probe_client: httpx.AsyncClient, probe_app: FastAPI
) -> None:
    assert (await probe_client.post("/api/v1/_probe/users?fail=true")).status_code == 409
    assert await _user_count(probe_app) == 0


async def _user_count(app: FastAPI) -> int:
    async with app.state.resources.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(User))).scalar_one())


async def test_the_form_route_still_takes_a_form(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/token", data={"username": "nobody@example.com", "password": "wrong-one-1"}
    )
    assert_envelope(response, 401, "invalid_credentials")


@pytest.mark.parametrize(
    ("accept", "json_wanted"),
    [
        (None, False),
        ("application/json", True),
        ("*/*", False),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("application/json, text/html;q=0.5", True),
        ("text/html;q=0.5, application/*", True),
        ("application/json;q=0, text/html", False),
        ("application/json;q=oops", False),
        ("application/json, text/plain, */*", True),  # axios, Angular
        ("application/json, */*", True),
        ("text/*, application/json", True),
        ("text/html, application/json", False),  # the same q, both named: the page
        ("application/json;q=2, text/html;q=0.9", True),  # q is at most 1
    ],
)
def test_content_negotiation_between_a_page_and_json(accept: str | None, json_wanted: bool) -> None:
    assert prefers_json(accept) is json_wanted
