"""Print the top results for a few searches against the configured DATABASE_URL, e.g. after
`pagely import-books ../shared/data/goodbooks-10k.csv`:

    DATABASE_URL=... REDIS_URL=... .venv/bin/python scripts/search-check.py "hunger games" ...
"""

from __future__ import annotations

import asyncio
import sys

import httpx
from asgi_lifespan import LifespanManager

from pagely.app import create_app
from pagely.settings import get_settings


async def main(queries: list[str]) -> None:
    app = create_app(get_settings())
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://local") as client:
            for q in queries:
                page = (await client.get("/api/v1/books", params={"q": q, "limit": 3})).json()
                print(f"{q!r}:")
                for book in page["items"]:
                    print(f"    {book['title']} ({', '.join(book['authors'])})")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or ["hunger games", "harry potter", "tolkein hobit"]))
