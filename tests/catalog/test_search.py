"""Search on a small fixture catalog: relevance order, typo tolerance, filters with q."""

from __future__ import annotations

import os
import random
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlmodel import col

from pagely.catalog.books import search
from pagely.core.resources import Resources
from pagely.models import Book
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.catalog import BOOKS

CATALOG: list[dict[str, Any]] = [
    {"title": "The Hobbit", "authors": ["J.R.R. Tolkien"], "tags": ["fantasy"],
     "description": "A hobbit is swept into a quest for dragon gold."},
    {"title": "The Fellowship of the Ring", "authors": ["J.R.R. Tolkien"], "tags": ["fantasy"],
     "description": "The first part of the quest; the hobbit Frodo carries the ring."},
    {"title": "Hobbit Recipes for Everyday Cooks", "authors": ["Ann Baker"], "tags": ["cooking"],
     "description": "Second breakfasts."},
    {"title": "The Hunger Games", "authors": ["Suzanne Collins"], "tags": ["dystopia"],
     "description": "Games where children fight."},
    {"title": "Catching Fire", "subtitle": "The Hunger Games, book two",
     "authors": ["Suzanne Collins"], "tags": ["dystopia"], "description": "More games."},
    {"title": "Dragon Cookbook", "authors": ["Chef Smaug"], "tags": ["cooking", "fantasy"],
     "description": "Cooking with fire.", "language": "de"},
]  # fmt: skip


@pytest.fixture
async def catalog(client: httpx.AsyncClient, resources: Resources) -> dict[str, str]:
    user = await make_user(resources)
    headers = bearer((await sign_in(client, user.email))["access_token"])
    ids = {}
    for book in CATALOG:
        response = await client.post(BOOKS, json=book, headers=headers)
        assert response.status_code == 201, response.text
        ids[book["title"]] = response.json()["id"]
    return ids


async def _titles(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get(BOOKS, params=params)
    assert response.status_code == 200, response.text
    return [b["title"] for b in response.json()["items"]]


async def test_relevance_puts_title_and_author_matches_first(
    client: httpx.AsyncClient, catalog: dict[str, str]
) -> None:
    hobbit = await _titles(client, q="hobbit")
    assert hobbit[0] == "The Hobbit"
    assert set(hobbit) == {"The Hobbit", "Hobbit Recipes for Everyday Cooks",
                           "The Fellowship of the Ring"}  # fmt: skip
    assert hobbit[-1] == "The Fellowship of the Ring"  # only in its description
    assert (await _titles(client, q="hunger games"))[0] == "The Hunger Games"
    assert await _titles(client, q="tolkien ring") == ["The Fellowship of the Ring"]
    assert await _titles(client, q="collins", sort="title") == ["Catching Fire", "The Hunger Games"]
    assert await _titles(client, q="cooking", tag="fantasy") == ["Dragon Cookbook"]
    assert await _titles(client, q="cooking", language="en") == [
        "Hobbit Recipes for Everyday Cooks"
    ]
    assert await _titles(client, q="the of and") == []  # only stop words
    assert await _titles(client, q="zzzyx qqq") == []


async def test_relevance_pages_with_a_cursor(
    client: httpx.AsyncClient, catalog: dict[str, str]
) -> None:
    first = (await client.get(BOOKS, params={"q": "hobbit", "limit": 2})).json()
    second = (await client.get(BOOKS, params={"q": "hobbit", "limit": 2,
                                              "cursor": first["next_cursor"]})).json()  # fmt: skip
    assert [b["title"] for b in first["items"] + second["items"]] == await _titles(
        client, q="hobbit"
    )
    assert second["next_cursor"] is None


async def test_typo_tolerance(
    app: FastAPI, client: httpx.AsyncClient, catalog: dict[str, str]
) -> None:
    if not app.state.resources.trigram:
        if os.environ.get("PAGELY_REQUIRE_TRGM"):
            pytest.fail("pg_trgm is missing but PAGELY_REQUIRE_TRGM is set (CI must not skip)")
        pytest.skip("pg_trgm is not installed in this PostgreSQL: search has no typo tolerance")
    assert (await _titles(client, q="tolkein hobit"))[0] == "The Hobbit"
    assert (await _titles(client, q="huger games"))[0] == "The Hunger Games"
    assert (await _titles(client, q="Colins"))[0] in {"The Hunger Games", "Catching Fire"}
    # Pages of a corrected search stay corrected, and a page past the end stays empty.
    first = (await client.get(BOOKS, params={"q": "colins", "limit": 1})).json()
    second = (
        await client.get(BOOKS, params={"q": "colins", "limit": 1, "cursor": first["next_cursor"]})
    ).json()
    titles = {first["items"][0]["title"], second["items"][0]["title"]}
    assert titles == {"The Hunger Games", "Catching Fire"}
    assert second["next_cursor"] is None
    hunger = (await client.get(BOOKS, params={"q": "hunger", "limit": 2})).json()
    assert hunger["next_cursor"] is None  # two books have the word as typed: no correction


async def test_a_long_query_is_refused_fast(client: httpx.AsyncClient) -> None:
    response = await client.get(BOOKS, params={"q": "word " * 100})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "query.q"


async def test_two_step_ranking_gives_the_full_ranking(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    """`search.candidates` must find exactly what ranking every match finds, page after page,
    for common and rare words, several words, filters and ties in popularity."""
    rng = random.Random(7)
    vocabulary = ["amber", "basalt", "cinder", "delta", "ember", "fjord", "garnet", "harbor"]
    weights = [40, 20, 10, 6, 4, 2, 1, 1]  # common to rare
    async with resources.sessionmaker() as session, session.begin():
        for n in range(300):
            words = rng.choices(vocabulary, weights, k=rng.randint(1, 3))
            session.add(
                Book(
                    title=" ".join(words) + f" {n}",
                    authors=[f"Author {rng.choice(vocabulary)}"],
                    description=" ".join(rng.choices(vocabulary, weights, k=rng.randint(3, 30))),
                    language=rng.choice(["en", "en", "fr"]),
                    popularity=rng.choice([0, 0, 5, 50, 500, 5000]),
                    rating_count=rng.choice([0, 0, 1, 3]),
                )
            )
    queries: list[dict[str, Any]] = [{"q": w} for w in vocabulary]
    queries += [{"q": "amber basalt"}, {"q": "cinder harbor"}, {"q": "author ember"}]
    queries += [{"q": "amber", "language": "fr"}, {"q": "basalt delta", "language": "en"}]
    for params in queries:
        query = search.ts_query(search.query_words(params["q"]), {})
        full = (
            select(col(Book.id))
            .where(col(Book.search_vector).op("@@")(query))
            .order_by(search.score(query).desc(), col(Book.id).desc())
        )
        if "language" in params:
            full = full.where(col(Book.language) == params["language"])
        async with resources.sessionmaker() as session:
            expected = [str(i) for i in (await session.execute(full)).scalars()]
        got: list[str] = []
        cursor = None
        while True:
            page = (
                await client.get(BOOKS, params={**params, "limit": 7, **({"cursor": cursor}
                                                                        if cursor else {})})
            ).json()  # fmt: skip
            got += [b["id"] for b in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        assert got == expected, params
        assert expected or params["q"] == "cinder harbor"


async def test_the_largest_popularity_can_be_reviewed_and_searched(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    """An import may store popularity up to the column's maximum; popularity + reviews must
    not overflow, neither in the ranking nor in the index on it."""
    owner = await make_user(resources)
    headers = bearer((await sign_in(client, owner.email))["access_token"])
    book = (await client.post(BOOKS, json={**CATALOG[0]}, headers=headers)).json()
    async with resources.sessionmaker() as session, session.begin():
        await session.execute(
            update(Book).where(col(Book.id) == book["id"]).values(popularity=2**31 - 1)
        )
    reader = await make_user(resources)
    reader_headers = bearer((await sign_in(client, reader.email))["access_token"])
    reviewed = await client.post(
        f"{BOOKS}/{book['id']}/reviews", json={"rating": 5, "body": "Yes."}, headers=reader_headers
    )
    assert reviewed.status_code == 201, reviewed.text
    assert [b["id"] for b in (await client.get(BOOKS, params={"q": "hobbit"})).json()["items"]] == [
        book["id"]
    ]
