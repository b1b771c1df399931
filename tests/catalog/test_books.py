"""Books over HTTP against real PostgreSQL and Redis: CRUD, ISBNs, ETags and If-Match,
idempotent creates, cursor pagination, caching, bad input."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from pagely.core.resources import Resources
from pagely.models import Book, BookTag, IdempotencyKey, User
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.catalog import BOOKS, book_body


async def _writer(
    client: httpx.AsyncClient, resources: Resources, **kw: Any
) -> tuple[User, dict[str, str]]:
    user = await make_user(resources, **kw)
    return user, bearer((await sign_in(client, user.email))["access_token"])


async def _count(resources: Resources, model: Any = Book) -> int:
    async with resources.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    response = await client.post(BOOKS, json=book_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_read_update_delete(client: httpx.AsyncClient, resources: Resources) -> None:
    owner, headers = await _writer(client, resources)
    created = await client.post(BOOKS, json=book_body(), headers=headers)
    assert created.status_code == 201
    book = created.json()
    assert book["isbn13"] == "9780441478125"
    assert book["isbn10"] == "0441478123"
    assert book["tags"] == ["science-fiction", "classics"]
    assert book["owner_id"] == str(owner.id)
    assert (book["rating_avg"], book["rating_count"], book["version"]) == (0, 0, 1)
    assert created.headers["Location"].endswith(book["id"])

    got = await client.get(f"{BOOKS}/{book['id']}")
    assert got.status_code == 200
    assert got.json() == book
    etag = got.headers["ETag"]
    assert got.headers["Cache-Control"] == "public, no-cache"
    not_modified = await client.get(f"{BOOKS}/{book['id']}", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""

    for isbn in ("0441478123", "978-0441478125", "0-441-47812-3"):
        by_isbn = await client.get(f"{BOOKS}/isbn/{isbn}")
        assert by_isbn.json()["id"] == book["id"], isbn
    assert (await client.get(f"{BOOKS}/isbn/9780441478126")).status_code == 422
    assert (await client.get(f"{BOOKS}/isbn/9780306406157")).status_code == 404

    patched = await client.patch(
        f"{BOOKS}/{book['id']}",
        json={"page_count": 320, "subtitle": None, "tags": ["SF"]},
        headers={**headers, "If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["page_count"] == 320
    assert patched.json()["tags"] == ["sf"]
    assert patched.json()["version"] == 2
    assert patched.headers["ETag"] != etag
    # Read straight after the write: never the cached old version.
    fresh = await client.get(f"{BOOKS}/{book['id']}")
    assert (fresh.json()["page_count"], fresh.headers["ETag"]) == (320, patched.headers["ETag"])

    replaced = await client.put(
        f"{BOOKS}/{book['id']}",
        json={"title": "Replaced", "authors": ["Someone"]},
        headers={**headers, "If-Match": patched.headers["ETag"]},
    )
    assert replaced.status_code == 200
    assert replaced.json()["isbn13"] is None  # PUT replaces everything
    assert replaced.json()["tags"] == []
    async with resources.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(BookTag)) == 0

    deleted = await client.delete(f"{BOOKS}/{book['id']}", headers=headers)
    assert deleted.status_code == 204
    assert (await client.get(f"{BOOKS}/{book['id']}")).status_code == 404
    assert await _count(resources) == 0


async def test_isbn_is_unique_and_checked(client: httpx.AsyncClient, resources: Resources) -> None:
    _, headers = await _writer(client, resources)
    await _create(client, headers)
    again = await client.post(BOOKS, json=book_body(isbn="0441478123"), headers=headers)
    assert (again.status_code, again.json()["error"]["type"]) == (409, "isbn_exists")
    wrong = await client.post(BOOKS, json=book_body(isbn="978-0-441-47812-6"), headers=headers)
    assert wrong.status_code == 422
    assert wrong.json()["error"]["details"][0]["field"] == "body.isbn"
    assert "check digit" in wrong.json()["error"]["details"][0]["message"]
    other = await _create(client, headers, isbn="9780306406157")
    clash = await client.patch(
        f"{BOOKS}/{other['id']}",
        json={"isbn": "0441478123"},
        headers={**headers, "If-Match": f'"v{other["version"]}"'},
    )
    assert (clash.status_code, clash.json()["error"]["type"]) == (409, "isbn_exists")
    assert await _count(resources) == 2


async def test_writes_need_if_match_and_exactly_one_of_twenty_concurrent_wins(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, headers = await _writer(client, resources)
    book = await _create(client, headers)
    url = f"{BOOKS}/{book['id']}"
    missing = await client.patch(url, json={"page_count": 1}, headers=headers)
    assert (missing.status_code, missing.json()["error"]["type"]) == (428, "precondition_required")
    stale = await client.patch(url, json={"page_count": 1}, headers={**headers, "If-Match": '"v0"'})
    assert (stale.status_code, stale.json()["error"]["type"]) == (412, "precondition_failed")
    weak = await client.patch(
        url, json={"page_count": 1}, headers={**headers, "If-Match": 'W/"v1"'}
    )
    assert weak.status_code == 412

    etag = (await client.get(url)).headers["ETag"]
    results = await asyncio.gather(
        *(
            client.patch(url, json={"page_count": 100 + n}, headers={**headers, "If-Match": etag})
            for n in range(20)
        )
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [412] * 19
    winner = next(r for r in results if r.status_code == 200).json()
    final = (await client.get(url)).json()
    assert (final["version"], final["page_count"]) == (2, winner["page_count"])


async def test_only_the_owner_or_an_admin_may_change_a_book(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, owner = await _writer(client, resources)
    _, stranger = await _writer(client, resources)
    _, admin = await _writer(client, resources, role="admin")
    _, unverified = await _writer(client, resources, verified=False)
    book = await _create(client, owner)
    url = f"{BOOKS}/{book['id']}"
    match = {"If-Match": f'"v{book["version"]}"'}
    refused = await client.patch(url, json={"page_count": 1}, headers={**stranger, **match})
    assert (refused.status_code, refused.json()["error"]["type"]) == (403, "not_book_owner")
    blocked = await client.post(BOOKS, json=book_body(isbn=None), headers=unverified)
    assert (blocked.status_code, blocked.json()["error"]["type"]) == (403, "email_not_verified")
    allowed = await client.patch(url, json={"page_count": 1}, headers={**admin, **match})
    assert allowed.status_code == 200
    assert (await client.delete(url, headers=stranger)).status_code == 403
    assert (await client.delete(url, headers=admin)).status_code == 204


async def test_idempotent_create(client: httpx.AsyncClient, resources: Resources) -> None:
    _, headers = await _writer(client, resources)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await client.post(BOOKS, json=book_body(), headers={**headers, **key})
    retry = await client.post(BOOKS, json=book_body(), headers={**headers, **key})
    assert first.status_code == retry.status_code == 201
    assert first.json() == retry.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    for name in ("ETag", "Location"):  # the same headers as the first answer
        assert retry.headers[name] == first.headers[name]
    assert await _count(resources) == 1

    different = await client.post(BOOKS, json=book_body(title="Other"), headers={**headers, **key})
    assert (different.status_code, different.json()["error"]["type"]) == (
        422,
        "idempotency_key_reused",
    )
    # At once: one book, every answer the same 201.
    key2 = {"Idempotency-Key": "concurrent-1"}
    body = book_body(isbn=None, title="Raced")
    results = await asyncio.gather(
        *(client.post(BOOKS, json=body, headers={**headers, **key2}) for _ in range(8))
    )
    assert {r.status_code for r in results} == {201}
    assert len({r.json()["id"] for r in results}) == 1
    assert await _count(resources) == 2
    # A failed create stores nothing under its key: the retry gets the same error.
    key3 = {"Idempotency-Key": "dup-isbn"}
    for _ in range(2):
        dup = await client.post(BOOKS, json=book_body(), headers={**headers, **key3})
        assert dup.status_code == 409
    assert await _count(resources, IdempotencyKey) == 2
    bad_key = await client.post(
        BOOKS, json=book_body(), headers={**headers, "Idempotency-Key": "a b"}
    )
    assert bad_key.status_code == 422


async def test_cursor_walk_while_inserting_sees_each_book_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, headers = await _writer(client, resources)
    for n in range(25):
        await _create(client, headers, isbn=None, title=f"Book {n:02d}")
    for sort in ("-created_at", "title", "-published_date", "published_date", "-rating"):
        seen: list[str] = []
        cursor = None
        inserted = 0
        while True:
            params: dict[str, Any] = {"limit": 4, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get(BOOKS, params=params)).json()
            seen += [b["id"] for b in page["items"]]
            await _create(client, headers, isbn=None, title=f"New {sort} {inserted}")
            inserted += 1
            if not (cursor := page["next_cursor"]):
                break
        assert len(seen) == len(set(seen)), sort
        everything = (await client.get(BOOKS, params={"limit": 100})).json()["items"]
        originals = {b["id"] for b in everything if b["title"].startswith("Book ")}
        assert originals <= set(seen), sort
    other_sort_cursor = (await client.get(BOOKS, params={"limit": 2})).json()["next_cursor"]
    mixed = await client.get(
        BOOKS, params={"limit": 2, "sort": "title", "cursor": other_sort_cursor}
    )
    assert (mixed.status_code, mixed.json()["error"]["type"]) == (422, "invalid_cursor")


async def test_filters_combine(client: httpx.AsyncClient, resources: Resources) -> None:
    owner, headers = await _writer(client, resources)
    _, other = await _writer(client, resources)
    await _create(client, headers, isbn=None, title="Dune", authors=["Frank Herbert"],
                  tags=["sf", "desert"], language="en", published_date="1965-08-01",
                  publisher="Chilton")  # fmt: skip
    await _create(client, headers, isbn=None, title="Dune Messiah", authors=["Frank Herbert"],
                  tags=["sf"], published_date="1969-10-15", publisher="Putnam")  # fmt: skip
    await _create(client, other, isbn=None, title="Le Petit Prince",
                  authors=["Antoine de Saint-Exupéry"], tags=["classics"], language="fr",
                  published_date="1943-04-06")  # fmt: skip

    async def titles(**params: Any) -> list[str]:
        response = await client.get(BOOKS, params={"sort": "title", **params})
        assert response.status_code == 200, response.text
        return [b["title"] for b in response.json()["items"]]

    assert await titles(author="herbert") == ["Dune", "Dune Messiah"]
    assert await titles(author="Frank Herbert", tag=["sf", "desert"]) == ["Dune"]
    assert await titles(language="FR") == ["Le Petit Prince"]
    assert await titles(publisher="putnam") == ["Dune Messiah"]
    assert await titles(published_from="1960-01-01", published_to="1966-01-01") == ["Dune"]
    assert await titles(owner_id=str(owner.id), tag="sf") == ["Dune", "Dune Messiah"]
    assert await titles(min_rating=1) == []
    assert await titles(q="dune", language="en", tag="desert") == ["Dune"]
    dated = await client.get(BOOKS, params={"sort": "-published_date"})
    assert [b["title"] for b in dated.json()["items"]] == [
        "Dune Messiah",
        "Dune",
        "Le Petit Prince",
    ]

    tags = (await client.get("/api/v1/tags")).json()
    assert tags == [
        {"slug": "sf", "book_count": 2},
        {"slug": "classics", "book_count": 1},
        {"slug": "desert", "book_count": 1},
    ]


async def test_lists_and_tags_are_fresh_after_writes(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, headers = await _writer(client, resources)
    assert (await client.get(BOOKS)).json()["items"] == []  # cached empty first page
    assert (await client.get("/api/v1/tags")).json() == []
    book = await _create(client, headers, tags=["new-tag"])
    assert [b["id"] for b in (await client.get(BOOKS)).json()["items"]] == [book["id"]]
    assert (await client.get("/api/v1/tags")).json() == [{"slug": "new-tag", "book_count": 1}]
    etag = (await client.get(BOOKS)).headers["ETag"]
    assert (await client.get(BOOKS, headers={"If-None-Match": etag})).status_code == 304
    await client.delete(f"{BOOKS}/{book['id']}", headers=headers)
    assert (await client.get(BOOKS)).json()["items"] == []
    assert (await client.get("/api/v1/tags")).json() == []


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", BOOKS, {"json": {**book_body(), "owner_id": str(uuid.uuid4())}}),
        ("POST", BOOKS, {"json": book_body(isbn="9780441478120")}),
        ("POST", BOOKS, {"json": book_body(authors=[])}),
        ("POST", BOOKS, {"json": book_body(language="english")}),
        ("POST", BOOKS, {"json": book_body(tags=["x"] * 21)}),
        ("POST", BOOKS, {"content": "title=x", "headers": {"Content-Type": "text/plain"}}),
        ("POST", BOOKS, {"content": "{not json", "headers": {"Content-Type": "application/json"}}),
        ("POST", BOOKS, {"json": book_body(title="nul\x00byte")}),
        ("GET", BOOKS, {"params": {"q": "nul\x00byte"}}),
        ("GET", BOOKS, {"params": {"limit": 0}}),
        ("GET", BOOKS, {"params": {"limit": 10000}}),
        ("GET", BOOKS, {"params": {"cursor": "garbage"}}),
        ("GET", BOOKS, {"params": {"cursor": "WyJ0aXRsZSIsMSwibm8tdXVpZCJd"}}),
        ("GET", BOOKS, {"params": {"sort": "price"}}),
        ("GET", BOOKS, {"params": {"sort": "relevance"}}),
        ("GET", BOOKS, {"params": {"q": "x" * 201}}),
        ("GET", BOOKS, {"params": {"min_rating": 6}}),
        ("GET", BOOKS, {"params": {"published_from": "yesterday"}}),
        ("GET", f"{BOOKS}/not-a-uuid", {}),
        ("GET", f"{BOOKS}/not-a-uuid/reviews", {}),
    ],
)
async def test_bad_input_is_a_4xx_envelope_and_writes_nothing(
    client: httpx.AsyncClient, resources: Resources, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    _, headers = await _writer(client, resources)
    kwargs = {**kwargs, "headers": {**headers, **kwargs.get("headers", {})}}
    response = await client.request(method, path, **kwargs)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["success"] is False
    assert await _count(resources) == 0


async def test_a_cursor_after_the_longest_title_is_accepted(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    # A title-sort cursor carries the title: the longest one a book may have (500 characters,
    # here 2 bytes each in UTF-8) must fit the cursor parameter's limit.
    _, headers = await _writer(client, resources)
    longest = "é" * 500
    await _create(client, headers, title=longest, isbn=None)
    await _create(client, headers, title="ê" * 500, isbn=None)
    first = (await client.get(BOOKS, params={"sort": "title", "limit": 1})).json()
    assert first["items"][0]["title"] == longest
    second = await client.get(
        BOOKS, params={"sort": "title", "limit": 1, "cursor": first["next_cursor"]}
    )
    assert second.status_code == 200, second.text
    assert second.json()["items"][0]["title"] == "ê" * 500
