"""The chaos drills' load: virtual users that behave like the mobile app, through the load
balancer, recording every answer with the time it came and the fault running at the time.

Each user signs in, then loops: reads (a book, the first page, a search), a write now and then
(POST /books with an Idempotency-Key, retried with the same key after a 503 or a dropped
connection, honouring Retry-After), a refresh, and sometimes a sign-out followed by one call
with the access token just revoked (it must never be accepted) and a new sign-in. A separate
stream registers new accounts, each of which must receive exactly one verification email."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

PASSWORD = "a-good-long-password"
API = "/api/v1"


@dataclass
class Answer:
    at: float
    phase: str
    kind: str
    status: int  # 0: no answer (a connection error or the client's timeout)


@dataclass
class Record:
    answers: list[Answer] = field(default_factory=list)
    created: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> book id (201)
    registered: list[str] = field(default_factory=list)  # addresses answered 202
    revoked_accepted: int = 0
    revoked_checked: int = 0


class Load:
    def __init__(self, base_url: str, phase: Callable[[], str], users: list[str]) -> None:
        self.base_url = base_url
        self.phase = phase
        self.users = users
        self.record = Record()
        self.stopping = False

    def _note(self, kind: str, status: int) -> None:
        self.record.answers.append(Answer(time.monotonic(), self.phase(), kind, status))

    async def _call(
        self, client: httpx.AsyncClient, kind: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        try:
            response = await client.request(method, API + path, **kwargs)
        except httpx.HTTPError:
            self._note(kind, 0)
            return None
        self._note(kind, response.status_code)
        return response

    async def _retrying(
        self, client: httpx.AsyncClient, kind: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        """As the app retries: after a 503 (waiting its Retry-After) or no answer, up to a
        few times; the request is the same each time (the same Idempotency-Key)."""
        for _ in range(6):
            response = await self._call(client, kind, method, path, **kwargs)
            if response is not None and response.status_code != 503:
                return response
            wait = 1.0
            if response is not None:
                wait = float(response.headers.get("Retry-After", "1"))
            await asyncio.sleep(min(wait, 2.0))
        return None

    async def _sign_in(self, client: httpx.AsyncClient, email: str) -> dict[str, str] | None:
        body = {"email": email, "password": PASSWORD}
        response = await self._retrying(client, "signin", "POST", "/auth/signin", json=body)
        if response is None or response.status_code != 200:
            return None
        pair: dict[str, str] = response.json()
        return pair

    async def _user(self, email: str, book_ids: list[str]) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            pair = None
            while not self.stopping:
                if pair is None:
                    pair = await self._sign_in(client, email)
                    if pair is None:
                        await asyncio.sleep(0.5)
                        continue
                auth = {"Authorization": f"Bearer {pair['access_token']}"}
                roll = random.random()
                if roll < 0.35:
                    await self._call(client, "read", "GET", f"/books/{random.choice(book_ids)}",
                                     headers=auth)  # fmt: skip
                elif roll < 0.55:
                    await self._call(client, "list", "GET", "/books", params={"limit": 20})
                elif roll < 0.65:
                    await self._call(client, "search", "GET", "/books", params={"q": "history"})
                elif roll < 0.8:
                    await self._write(client, auth)
                elif roll < 0.9:
                    body = {"refresh_token": pair["refresh_token"]}
                    response = await self._retrying(
                        client, "refresh", "POST", "/auth/refresh-token", json=body
                    )
                    if response is not None and response.status_code == 200:
                        pair = response.json()
                    elif response is not None and response.status_code == 401:
                        pair = None
                else:
                    await self._sign_out_and_check(client, auth, pair)
                    pair = None
                await asyncio.sleep(0.02)

    async def _write(self, client: httpx.AsyncClient, auth: dict[str, str]) -> None:
        key = str(uuid.uuid4())
        body = {"title": f"chaos {key}", "authors": ["Chaos Monkey"]}
        response = await self._retrying(
            client, "write", "POST", "/books", json=body, headers={**auth, "Idempotency-Key": key}
        )
        if response is not None and response.status_code == 201:
            self.record.created[key] = response.json()["id"]

    async def _sign_out_and_check(
        self, client: httpx.AsyncClient, auth: dict[str, str], pair: dict[str, str]
    ) -> None:
        out = await self._retrying(client, "logout", "POST", "/auth/logout", headers=auth,
                                   json={"refresh_token": pair["refresh_token"]})  # fmt: skip
        if out is None or out.status_code != 204:
            return
        self.record.revoked_checked += 1
        after = await self._call(client, "revoked", "GET", "/auth/me", headers=auth)
        if after is not None and after.status_code == 200:
            self.record.revoked_accepted += 1

    async def _registrations(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            while not self.stopping:
                email = f"chaos-{uuid.uuid4().hex[:12]}@example.com"
                body = {"email": email, "password": PASSWORD, "name": "Chaos Reader"}
                response = await self._retrying(client, "register", "POST", "/auth/register",
                                                json=body)  # fmt: skip
                if response is not None and response.status_code == 202:
                    self.record.registered.append(email)
                await asyncio.sleep(0.25)

    async def run(self, book_ids: list[str], stop: threading.Event) -> Record:
        tasks = [asyncio.create_task(self._user(email, book_ids)) for email in self.users]
        tasks.append(asyncio.create_task(self._registrations()))
        await asyncio.to_thread(stop.wait)  # set by the drill, from its own thread
        self.stopping = True
        await asyncio.gather(*tasks)
        return self.record
