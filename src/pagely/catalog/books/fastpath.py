"""The fast path for the hottest requests, answered from the Redis cache before routing:
`GET /books/{id}` and the first page of the default listing (`GET /books`, `?limit=N`).

A mobile client asks for the same books over and over, and a cache hit is a single Redis
round trip; FastAPI's routing, dependency solving and response classes cost several times
that (docs/performance.md has the profile). This middleware answers a hit before routing and
hands everything else to FastAPI untouched: a miss, a deleted book, a malformed id, a token
it cannot accept, a Redis error, any other method, path or query. The routes stay the ones
documented in OpenAPI and the ones that handle every failure.

It shares the route's code rather than copying it: the book service's cache read
(`cached_book`, `cached_first_page`), `core.http.revalidated_json` for the status and
headers (so both send the same bytes; a test compares them), the pagination limits, and the
route paths from the router. With a bearer token the token is checked as the public routes
check it (signature, expiry, type, and the logout denylist); for a book the denylist lookup
rides in the same Redis pipeline as the book: one round trip. A listing request with a token
goes to the route.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from pagely.catalog.books.router import BOOK_PATH, LIST_PATH
from pagely.catalog.books.service import cached_book, cached_first_page
from pagely.core.http import body_etag, revalidated_json, version_etag
from pagely.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from pagely.core.resources import Resources
from pagely.identity import denylist, tokens
from pagely.identity.dependencies import bearer_token

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_LIMIT = re.compile(rb"limit=[1-9][0-9]{0,2}")


class BookReadFastPath:
    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        self.listing = prefix + LIST_PATH
        self.stem = prefix + BOOK_PATH.removesuffix("{book_id}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(self.stem) and len(path) == len(self.stem) + 36:
                if await self._book(scope, send, path[len(self.stem) :]):
                    return
            elif path == self.listing and await self._first_page(scope, send):
                return
        await self.app(scope, receive, send)

    async def _book(self, scope: Scope, send: Send, book_id: str) -> bool:
        """Send the cached book and return True, or return False having sent nothing."""
        if _ID.fullmatch(book_id) is None:
            return False
        authorization = if_none_match = None
        for key, value in scope["headers"]:  # the first of a repeated header, as Starlette
            if key == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif key == b"if-none-match" and if_none_match is None:
                if_none_match = value.decode("latin-1")
        resources: Resources | None = getattr(scope["app"].state, "resources", None)
        if resources is None:
            return False
        claims = None
        if authorization is not None:
            token = bearer_token(authorization)
            if token is None:
                return False  # not a bearer token: the route decides
            try:
                claims = tokens.decode(resources.settings, token, "access")
            except tokens.TokenError:
                return False  # the route answers the 401 (and logs why)
        denylisted = None if claims is None else denylist.key(claims.jti)
        found = await cached_book(resources.cache, book_id, unless_key=denylisted)
        if found is None or not found[1]:  # a miss, a denied token or a tombstone: the route
            return False
        version, body = found
        state = scope.setdefault("state", {})
        if claims is not None:
            state["user_id"] = str(claims.user_id)
        state["route_path"] = BOOK_PATH  # as FastAPI names the route in the access log
        await _send(send, body, version_etag(version), if_none_match)
        return True

    async def _first_page(self, scope: Scope, send: Send) -> bool:
        """The cached first page, for an anonymous `GET /books` or `GET /books?limit=N`."""
        query: bytes = scope["query_string"]
        if not query:
            limit = DEFAULT_LIMIT
        elif _LIMIT.fullmatch(query) and int(query[6:]) <= MAX_LIMIT:
            limit = int(query[6:])
        else:
            return False
        if_none_match = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                return False  # the route checks a token that is sent
            if key == b"if-none-match" and if_none_match is None:
                if_none_match = value.decode("latin-1")
        resources: Resources | None = getattr(scope["app"].state, "resources", None)
        if resources is None:
            return False
        _, body = await cached_first_page(resources.cache, limit)
        if body is None:
            return False
        scope.setdefault("state", {})["route_path"] = LIST_PATH
        await _send(send, body, body_etag(body), if_none_match)
        return True


async def _send(send: Send, body: bytes, tag: str, if_none_match: str | None) -> None:
    status, headers = revalidated_json(body, tag, if_none_match)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body if status == 200 else b""})
