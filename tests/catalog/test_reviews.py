"""Reviews: one per user per book, exact aggregates under concurrent writers, moderation,
and the owner's notification in the review's transaction."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlmodel import col

from pagely.core.resources import Resources
from pagely.models import Book, Notification, OutboxMessage, Review, User
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.catalog import BOOKS, book_body


async def _headers(
    client: httpx.AsyncClient, resources: Resources, **kw: Any
) -> tuple[User, dict[str, str]]:
    user = await make_user(resources, **kw)
    return user, bearer((await sign_in(client, user.email))["access_token"])


async def _book(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post(BOOKS, json=book_body(isbn=None), headers=headers)
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


async def _fresh_aggregates(resources: Resources, book_id: str) -> tuple[int, Decimal, list[int]]:
    async with resources.sessionmaker() as session:
        count, avg = (
            await session.execute(
                select(
                    func.count(), func.coalesce(func.round(func.avg(Review.rating), 2), 0)
                ).where(col(Review.book_id) == book_id)
            )
        ).one()
        hist = [
            int(
                await session.scalar(
                    select(func.count()).where(
                        col(Review.book_id) == book_id, col(Review.rating) == stars
                    )
                )
                or 0
            )
            for stars in range(1, 6)
        ]
        return int(count), Decimal(avg), hist


async def _stored_aggregates(resources: Resources, book_id: str) -> tuple[int, Decimal, list[int]]:
    async with resources.sessionmaker() as session:
        book = await session.get(Book, book_id)
        assert book is not None
        return book.rating_count, Decimal(book.rating_avg), list(book.rating_hist)


async def test_review_lifecycle_and_notification(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner, owner_headers = await _headers(client, resources, name="Olive Owner")
    reader, headers = await _headers(client, resources, name="Rita Reader")
    book = await _book(client, owner_headers)
    url = f"{BOOKS}/{book['id']}/reviews"

    created = await client.post(
        url, json={"rating": 4, "title": "Good", "body": "Liked it."}, headers=headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["user_name"] == "Rita Reader"
    assert created.json()["book"] == {
        "rating_avg": 4.0,
        "rating_count": 1,
        "histogram": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0},
    }
    again = await client.post(url, json={"rating": 5}, headers=headers)
    assert (again.status_code, again.json()["error"]["type"]) == (409, "review_exists")
    own = await client.post(url, json={"rating": 5}, headers=owner_headers)
    assert (own.status_code, own.json()["error"]["type"]) == (403, "cannot_review_own_book")

    # The book's representation (and so its ETag and cache) moved with the rating.
    fresh = await client.get(f"{BOOKS}/{book['id']}")
    assert (fresh.json()["rating_avg"], fresh.json()["rating_count"]) == (4.0, 1)
    assert fresh.headers["ETag"] != f'"v{book["version"]}"'

    async with resources.sessionmaker() as session:
        [note] = (await session.scalars(select(Notification))).all()
        assert (note.user_id, note.actor_id, note.kind) == (owner.id, reader.id, "review_created")
        [mail] = (await session.scalars(select(OutboxMessage))).all()
        assert mail.payload["template"] == "review_received"
        assert mail.payload["to"] == owner.email
    listed = await client.get("/api/v1/notifications", headers=owner_headers)
    assert listed.json()["items"][0]["data"]["reviewer_name"] == "Rita Reader"

    edited = await client.patch(
        f"{url}/me", json={"rating": 2, "body": "On reflection, no."}, headers=headers
    )
    assert edited.status_code == 200
    assert edited.json()["rating"] == 2
    page = (await client.get(url)).json()
    assert (page["rating_avg"], page["rating_count"]) == (2.0, 1)
    assert page["histogram"]["2"] == 1
    mine = (await client.get("/api/v1/reviews/me", headers=headers)).json()
    assert [r["book_id"] for r in mine["items"]] == [book["id"]]

    assert (await client.delete(f"{url}/me", headers=headers)).status_code == 204
    assert (await client.delete(f"{url}/me", headers=headers)).status_code == 404
    page = (await client.get(url)).json()
    assert (page["items"], page["rating_avg"], page["rating_count"]) == ([], 0.0, 0)


async def test_bad_reviews_are_refused_and_change_nothing(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, owner = await _headers(client, resources)
    _, headers = await _headers(client, resources)
    _, unverified = await _headers(client, resources, verified=False)
    book = await _book(client, owner)
    url = f"{BOOKS}/{book['id']}/reviews"
    for body in (
        {"rating": 0},
        {"rating": 6},
        {"rating": "five"},
        {"rating": 3, "body": "x" * 5001},
        {"rating": 3, "user_id": "someone"},
        {},
    ):
        response = await client.post(url, json=body, headers=headers)
        assert response.status_code == 422, body
    assert (await client.post(url, json={"rating": 3}, headers=unverified)).status_code == 403
    missing = await client.post(
        f"{BOOKS}/00000000-0000-0000-0000-000000000000/reviews", json={"rating": 3}, headers=headers
    )
    assert (missing.status_code, missing.json()["error"]["type"]) == (404, "book_not_found")
    assert (await client.get(url, params={"sort": "random"})).status_code == 422
    assert (await client.get(url, params={"cursor": "bad"})).status_code == 422
    async with resources.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Review)) == 0


async def test_concurrent_duplicate_reviews_give_one_201_and_409s(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, owner = await _headers(client, resources)
    _, headers = await _headers(client, resources)
    book = await _book(client, owner)
    results = await asyncio.gather(
        *(
            client.post(f"{BOOKS}/{book['id']}/reviews", json={"rating": 3}, headers=headers)
            for _ in range(10)
        )
    )
    assert sorted(r.status_code for r in results) == [201] + [409] * 9


async def test_aggregates_stay_exact_under_concurrent_writers(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, owner = await _headers(client, resources)
    book = await _book(client, owner)
    url = f"{BOOKS}/{book['id']}/reviews"
    readers = [await _headers(client, resources) for _ in range(12)]
    rng = random.Random(7)

    async def writer(headers: dict[str, str]) -> None:
        for _ in range(4):
            action = rng.choice(["create", "edit", "delete"])
            if action == "create":
                await client.post(url, json={"rating": rng.randint(1, 5)}, headers=headers)
            elif action == "edit":
                await client.patch(f"{url}/me", json={"rating": rng.randint(1, 5)}, headers=headers)
            else:
                await client.delete(f"{url}/me", headers=headers)

    await asyncio.gather(*(writer(h) for _, h in readers))
    stored = await _stored_aggregates(resources, book["id"])
    assert stored == await _fresh_aggregates(resources, book["id"])
    served = (await client.get(url)).json()
    assert served["rating_count"] == stored[0]
    assert Decimal(str(served["rating_avg"])) == stored[1]


async def test_review_pages_sorted_by_newest_and_rating(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, owner = await _headers(client, resources)
    book = await _book(client, owner)
    url = f"{BOOKS}/{book['id']}/reviews"
    ratings = [3, 5, 1, 4, 5, 2, 3]
    for rating in ratings:
        _, headers = await _headers(client, resources)
        assert (await client.post(url, json={"rating": rating}, headers=headers)).status_code == 201

    async def walk(sort: str) -> list[int]:
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"sort": sort, "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get(url, params=params)).json()
            seen += [r["rating"] for r in page["items"]]
            if not (cursor := page["next_cursor"]):
                return seen

    assert await walk("newest") == list(reversed(ratings))
    assert await walk("-rating") == sorted(ratings, reverse=True)
    assert await walk("rating") == sorted(ratings)


async def test_moderation_and_book_deletion_remove_reviews(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    _, owner = await _headers(client, resources)
    reader, headers = await _headers(client, resources)
    _, moderator = await _headers(client, resources, role="moderator")
    book = await _book(client, owner)
    url = f"{BOOKS}/{book['id']}/reviews"
    await client.post(url, json={"rating": 1, "body": "spam"}, headers=headers)
    target = f"/api/v1/reviews/{book['id']}/{reader.id}"
    assert (await client.delete(target, headers=headers)).status_code == 403
    assert (await client.delete(target, headers=moderator)).status_code == 204
    assert (await client.get(url)).json()["rating_count"] == 0

    await client.post(url, json={"rating": 4}, headers=headers)
    assert (await client.delete(f"{BOOKS}/{book['id']}", headers=owner)).status_code == 204
    async with resources.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Review)) == 0
        assert await session.scalar(select(func.count()).select_from(Notification)) == 0
