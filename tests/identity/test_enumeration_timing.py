"""No timing tells which addresses have accounts (issue 14): over real HTTP, the routes that
take an address someone types in answer a known and an unknown address in the same time.

Requests for known and unknown addresses are interleaved in pairs of random order, so load
from elsewhere on the machine falls on both alike; a route passes when the medians differ by less
than 1 ms or less than 15 %, in one of a few rounds."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select, text

from pagely.core.db import transaction
from pagely.core.resources import Resources
from pagely.models import OutboxMessage
from tests.fixtures.accounts import make_user

PASSWORD = "a-good-long-password"
PER_KIND = 100
ROUNDS = 4
ABSOLUTE_MS = 1.0
RELATIVE = 0.15


def _unknown() -> str:
    return f"nobody-{uuid.uuid4().hex[:12]}@example.com"


async def _medians(
    server: str, route: str, known: list[str], body: Callable[[str], dict[str, str]]
) -> tuple[float, float]:
    """Median milliseconds for known and for unknown addresses, one sequential client (as an
    attacker would probe), with a pause after each request so that nothing the server does
    after answering is billed to the next request."""
    # In pairs, each in a random order: a burst of load elsewhere falls on both kinds alike.
    order = [kind for _ in range(PER_KIND) for kind in random.sample([True, False], 2)]
    times: dict[bool, list[float]] = {True: [], False: []}
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        for n, is_known in enumerate([True, False] * 5 + order):  # the first ten warm up
            email = known[n % len(known)] if is_known else _unknown()
            start = time.perf_counter()
            response = await client.post(f"/api/v1/auth/{route}", json=body(email))
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 202, response.text
            if n >= 10:
                times[is_known].append(elapsed)
            await asyncio.sleep(0.03)
    return statistics.median(times[True]), statistics.median(times[False])


async def _recipients(resources: Resources, template: str) -> set[str]:
    """Who the outbox has mail for; the work runs after each answer, so wait for it a moment."""
    for _ in range(50):
        async with resources.sessionmaker() as session:
            rows = await session.scalars(select(OutboxMessage))
            payloads = [row.payload for row in rows]
        if payloads:
            break
        await asyncio.sleep(0.1)
    assert {p["template"] for p in payloads} == {template}
    return {p["to"] for p in payloads}


def _close(known_ms: float, unknown_ms: float) -> bool:
    difference = abs(known_ms - unknown_ms)
    return difference < ABSOLUTE_MS or difference < RELATIVE * min(known_ms, unknown_ms)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("route", "verified"), [("forgot-password", True), ("resend-verification", False)]
)
async def test_known_and_unknown_addresses_take_the_same_time(
    live_server: str,
    resources: Resources,
    report_measurement: Callable[[str], None],
    route: str,
    verified: bool,
) -> None:
    # Several known accounts, so that no request is cheaper for repeating an earlier one.
    known = [(await make_user(resources, verified=verified)).email for _ in range(6)]
    rounds = []
    for _ in range(ROUNDS):
        known_ms, unknown_ms = await _medians(live_server, route, known, lambda e: {"email": e})
        rounds.append(f"known {known_ms:.2f} ms, unknown {unknown_ms:.2f} ms")
        if _close(known_ms, unknown_ms):
            break
    report_measurement(f"{route}: " + "; ".join(rounds))
    assert _close(known_ms, unknown_ms), rounds
    # The email still goes out, after the answer: to the known accounts, to nobody else.
    template = "password_reset" if route == "forgot-password" else "verify_email"
    assert await _recipients(resources, template) == set(known)


@pytest.mark.slow
async def test_register_takes_the_same_time_for_a_known_address(
    live_server: str, resources: Resources, report_measurement: Callable[[str], None]
) -> None:
    """A known address gets the "account exists" email, a new one the verification email:
    both write one outbox row after the same Argon2 hash."""
    known = [(await make_user(resources)).email for _ in range(6)]

    def body(email: str) -> dict[str, str]:
        return {"email": email, "password": PASSWORD, "name": "Someone"}

    rounds = []
    for _ in range(ROUNDS):
        known_ms, unknown_ms = await _medians(live_server, "register", known, body)
        rounds.append(f"known {known_ms:.2f} ms, new {unknown_ms:.2f} ms")
        if _close(known_ms, unknown_ms):
            break
    report_measurement("register: " + "; ".join(rounds))
    assert _close(known_ms, unknown_ms), rounds


async def test_after_response_work_runs_after_the_commit_in_its_own_transaction(
    resources: Resources,
) -> None:
    from pagely.core.db import after_response  # here, so the timing tests run without it

    seen: list[str] = []

    async def work(session: object) -> None:
        seen.append("work")

    async with transaction(resources.sessionmaker) as session:
        after_response(session, "test", work)
        after_response(session, "test", work)  # one per key
        await session.execute(text("SELECT 1"))
        seen.append("body")
    assert seen == ["body", "work"]

    async def failing() -> None:
        async with transaction(resources.sessionmaker) as session:
            after_response(session, "test", work)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await failing()
    assert seen == ["body", "work"]  # never after a rollback


async def test_failing_after_response_work_is_logged_not_raised(resources: Resources) -> None:
    from pagely.core.db import after_response

    async def broken(session: object) -> None:
        raise ValueError("boom")

    async with transaction(resources.sessionmaker) as session:
        after_response(session, "broken", broken)
    # the block completed: the failure stayed in the log (after_response_failed)
