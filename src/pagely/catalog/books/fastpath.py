"""The fast path for the hottest requests, answered from the Redis cache before routing:
`GET /books/{id}` and the first page of the default listing (`GET /books`, `?limit=N`).

A mobile client asks for the same books over and over, and a cache hit is a single Redis
round trip; FastAPI's routing, dependency solving and response classes cost several times
that (docs/performance.md has the profile). This middleware answers a hit before routing,
with exactly the bytes and headers the route would send (tests compare the two paths), and
hands everything else to FastAPI untouched: a miss, a deleted book, a malformed id, a token
it cannot accept, a Redis error, any other method, path or query. The routes stay the ones
documented in OpenAPI and the ones that handle every failure.

With a bearer token the token is checked as the routes check it on public reads (signature,
expiry, type, and the logout denylist), and for a book the denylist lookup rides in the same
Redis pipeline as the book: one round trip. A listing request with a token goes to the route.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from pagely.catalog.books import queries as books
from pagely.catalog.cache import body_tag, cache_of, first_page_name
from pagely.core.pagination import MAX_LIMIT
from pagely.identity import tokens
from pagely.identity.dependencies import DENYLIST_PREFIX

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_LIMIT = re.compile(rb"limit=[1-9][0-9]{0,2}")
_JSON = b"application/json"
_CACHE_CONTROL = books.REVALIDATE.encode()


class BookReadFastPath:
    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        self.listing = f"{prefix}/books"
        self.stem = f"{prefix}/books/"

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
        resources = getattr(scope["app"].state, "resources", None)
        if resources is None:
            return False
        claims = None
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token:
                return False
            try:
                claims = tokens.decode(resources.settings, token, "access")
            except tokens.TokenError:
                return False  # the route answers the 401 (and logs why)
        denylisted = None if claims is None else DENYLIST_PREFIX + claims.jti
        found = await cache_of(resources).get_book(book_id, unless_key=denylisted)
        if found is None or not found[1]:  # a miss, a denied token or a tombstone: the route
            return False
        version, body = found
        state = scope.setdefault("state", {})
        if claims is not None:
            state["user_id"] = str(claims.user_id)
        state["route_path"] = "/books/{book_id}"  # as FastAPI names it in the access log
        await _send(send, body, books.etag(version), if_none_match)
        return True

    async def _first_page(self, scope: Scope, send: Send) -> bool:
        """The cached first page, for an anonymous `GET /books` or `GET /books?limit=N`."""
        query: bytes = scope["query_string"]
        if not query:
            limit = 20
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
        resources = getattr(scope["app"].state, "resources", None)
        if resources is None:
            return False
        _, body = await cache_of(resources).get_listed(first_page_name(limit))
        if body is None:
            return False
        scope.setdefault("state", {})["route_path"] = "/books"
        await _send(send, body, body_tag(body), if_none_match)
        return True


async def _send(send: Send, body: bytes, tag: str, if_none_match: str | None) -> None:
    """200 with the body, or 304: the headers the routes' responses carry, in their order."""
    headers = [(b"etag", tag.encode()), (b"cache-control", _CACHE_CONTROL)]
    if books.none_match(if_none_match, tag):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers.append((b"content-length", str(len(body)).encode()))
    headers.append((b"content-type", _JSON))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
