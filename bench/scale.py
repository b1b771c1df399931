"""`make bench-scale`: the first page uncached (scenario 4), a deep page (5) and search at one
connection (6) at 10k, 100k and 1M books; how their p50 grows with the catalog; and
`EXPLAIN (ANALYZE, BUFFERS)` of the statements behind them, so a regression shows where the
time goes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.dialects import postgresql

from bench import client, data, services
from bench.load import get_script
from bench.scenarios import (
    FIRST_PAGE_UNCACHED_PATH,
    Measurements,
    Result,
    Scenario,
    deep_page_depth,
    deep_page_path,
    search_paths,
)
from bench.servers import Server
from pagely.catalog.books import queries as books_queries
from pagely.catalog.books import search
from pagely.catalog.books.schemas import Filters

CATALOG_SIZES = (10_000, 100_000, 1_000_000)
SMOKE_CATALOG_SIZES = (1_000, 5_000)


@dataclass
class AtSize:
    books: int
    first_page: Result
    deep_page: Result
    search: Result


def measure(
    measurements: Measurements, sizes: tuple[int, ...], server_url: str, redis_url: str
) -> list[AtSize]:
    """The three scenarios at each catalog size, each followed by its plans."""
    curve = []
    for books in sizes:
        db_url = services.prepare(server_url, books)
        depth = deep_page_depth(books)
        with Server.pagely(1, services.environment(db_url, redis_url)) as server:
            server.wait_until_up("/health/ready")
            cursor = client.deep_cursor(server.url, depth)
            first_page = measurements.measure(
                Scenario.FIRST_PAGE_UNCACHED,
                f"4 first page, {books} books",
                server,
                get_script([FIRST_PAGE_UNCACHED_PATH]),
            )
            deep_page = measurements.measure(
                Scenario.DEEP_PAGE,
                f"5 depth {depth}, {books} books",
                server,
                get_script([deep_page_path(cursor)]),
            )
            found = measurements.measure(
                Scenario.SEARCH_ONE_CONNECTION,
                f"6 search, {books} books",
                server,
                get_script(search_paths()),
                connections=1,
                threads=1,
            )
        curve.append(AtSize(books, first_page, deep_page, found))
        explain(db_url, depth)
    return curve


def summary(curve: list[AtSize]) -> str:
    """The p50s at each size, and whether each grew slower than the catalog."""
    lines = [f"{'books':>9} {'4 p50 ms':>9} {'5 p50 ms':>9} {'6 p50 ms':>9} {'6 p95 ms':>9}"]
    for at in curve:
        lines.append(
            f"{at.books:>9} {at.first_page.p50_ms:>9.2f} {at.deep_page.p50_ms:>9.2f} "
            f"{at.search.p50_ms:>9.2f} {at.search.p95_ms:>9.2f}"
        )
    smallest, largest = curve[0], curve[-1]
    growth = largest.books / smallest.books
    scenarios: list[tuple[str, Callable[[AtSize], Result]]] = [
        ("4", lambda at: at.first_page),
        ("5", lambda at: at.deep_page),
        ("6", lambda at: at.search),
    ]
    for label, result in scenarios:
        ratio = result(largest).p50_ms / max(result(smallest).p50_ms, 1e-6)
        shape = "sub-linear" if ratio < growth else "NOT sub-linear"
        lines.append(f"scenario {label}: catalog x{growth:.0f}, p50 x{ratio:.2f} ({shape})")
    return "\n".join(lines)


def _sql(statement: Any) -> str:
    # With its values inline: the API inlines the search words too (so that each word gets
    # its own plan), so the search plan shown is the one the API gets.
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def explain(db_url: str, depth: int) -> None:
    """Print the plans of scenarios 4 (uncached), 5 (with the filter of 4) and 6. Each
    statement is built by the application's own `page_statement`, so the plan shown is the
    plan the API runs."""
    word = data.search_words()[10]
    english = books_queries.filter_conditions(Filters(language="en"))

    async def plans() -> None:
        conn = await asyncpg.connect(data.asyncpg_dsn(db_url))
        try:
            at = await conn.fetchrow(
                "SELECT created_at, id FROM books WHERE language = 'en' "
                "ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
                depth,
            )
            if at is None:
                raise RuntimeError(f"fewer than {depth} books in English")
            # asyncpg's UUID class is not one SQLAlchemy knows how to write as a literal.
            position = (at["created_at"], uuid.UUID(str(at["id"])))
            statements = {
                "4 first page, uncached": books_queries.page_statement(
                    "-created_at", None, english, None, 20
                ),
                f"5 page at depth {depth}, with the filter of 4": books_queries.page_statement(
                    "-created_at", None, english, position, 20
                ),
                f"6 search for {word!r}": books_queries.page_statement(
                    "relevance", search.ts_query([word], {}), [], None, 20
                ),
            }
            for label, statement in statements.items():
                rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + _sql(statement))
                print(f"-- plan: {label}")
                for row in rows:
                    print("   " + row[0])
        finally:
            await conn.close()

    asyncio.run(plans())
