"""The API calls that prepare scenarios (tokens, book ids, cursors), made through the API itself
so every scenario starts from what a client would have."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from bench import data

_TIMEOUT = 30


def sign_in(base: str, email: str) -> str:
    """An access token for one of the generated users."""
    response = httpx.post(
        f"{base}/api/v1/auth/signin",
        json={"email": email, "password": data.PASSWORD},
        timeout=_TIMEOUT,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def _pages(client: httpx.Client, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The listing's pages from the first, following their cursors to the end."""
    cursor: str | None = None
    while True:
        at = {"cursor": cursor} if cursor else {}
        page: dict[str, Any] = client.get("/api/v1/books", params={**params, **at}).json()
        yield page
        if not (cursor := page["next_cursor"]):
            return


def book_ids(base: str, count: int) -> list[str]:
    """The ids of the first `count` books by title (fewer in a smaller catalog)."""
    ids: list[str] = []
    with httpx.Client(base_url=base, timeout=_TIMEOUT) as client:
        for page in _pages(client, {"limit": 100, "sort": "title"}):
            ids += [book["id"] for book in page["items"]]
            if len(ids) >= count:
                break
    return ids[:count]


def deep_cursor(base: str, depth: int) -> str:
    """The cursor of the default listing's page at `depth`, or of its last page when the
    catalog is shorter."""
    cursor: str | None = None
    walked = 0
    with httpx.Client(base_url=base, timeout=_TIMEOUT) as client:
        for page in _pages(client, {"limit": 100}):
            if not page["next_cursor"]:
                break
            cursor = page["next_cursor"]
            walked += len(page["items"])
            if walked >= depth:
                break
    if cursor is None:
        raise RuntimeError(f"the catalog has no page after the first (depth {depth} asked)")
    return cursor


def owned_book_ids(base: str, token: str, count: int) -> list[str]:
    """Up to `count` books owned by the holder of `token`."""
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=_TIMEOUT) as client:
        me = client.get("/api/v1/auth/me", headers=auth).json()
        page = client.get("/api/v1/books", params={"owner_id": me["id"], "limit": count}).json()
    return [book["id"] for book in page["items"]]


def read_each(base: str, book_ids: list[str]) -> None:
    """GET every one of these books once (so they are in the cache)."""
    with httpx.Client(base_url=base, timeout=_TIMEOUT) as client:
        for book_id in book_ids:
            client.get(f"/api/v1/books/{book_id}").raise_for_status()
