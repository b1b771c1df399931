"""The fast path for the hottest request: `GET /books/{id}` answered from the Redis cache.

A mobile client asks for the same books over and over, and a cache hit is a single Redis
round trip; FastAPI's routing, dependency solving and response classes cost several times
that (docs/performance.md has the profile). This middleware answers a hit before routing,
with exactly the bytes and headers the route would send (tests compare the two paths), and
hands everything else to FastAPI untouched: a miss, a deleted book, a malformed id, a token
it cannot accept, a Redis error, any other method or path. The route stays the one
documented in OpenAPI and the one that handles every failure.

With a bearer token the token is checked as the route checks it on public reads (signature,
expiry, type, and the logout denylist), and the denylist lookup rides in the same Redis
pipeline as the book: one round trip.
"""

from __future__ import annotations

import re
from typing import Any

from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from pagely.auth import tokens
from pagely.auth.dependencies import DENYLIST_PREFIX
from pagely.catalog import books
from pagely.catalog.cache import book_key

_ID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_JSON = b"application/json"
_CACHE_CONTROL = books.REVALIDATE.encode()


class BookReadFastPath:
    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        self.stem = f"{prefix}/books/"
        self.route_path = "/books/{book_id}"  # as FastAPI names the route in the access log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and await self._answer(scope, send):
            return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send) -> bool:
        """Send the cached book and return True, or return False having sent nothing."""
        path: str = scope["path"]
        if not path.startswith(self.stem) or len(path) != len(self.stem) + 36:
            return False
        raw_id = path[len(self.stem) :].encode()
        if _ID.fullmatch(raw_id) is None:
            return False
        authorization = if_none_match = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                authorization = value.decode("latin-1")
            elif key == b"if-none-match":
                if_none_match = value.decode("latin-1")
        app = scope["app"]
        resources = getattr(app.state, "resources", None)
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
        found = await self._lookup(resources.redis, raw_id.decode(), claims)
        if found is None:
            return False
        version, body = found
        if claims is not None:
            scope.setdefault("state", {})["user_id"] = str(claims.user_id)
        scope.setdefault("state", {})["route_path"] = self.route_path
        tag = books.etag(version)
        headers = [(b"etag", tag.encode()), (b"cache-control", _CACHE_CONTROL)]
        if books.none_match(if_none_match, tag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return True
        headers.append((b"content-length", str(len(body)).encode()))
        headers.append((b"content-type", _JSON))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True

    @staticmethod
    async def _lookup(
        redis: Any, book_id: str, claims: tokens.TokenClaims | None
    ) -> tuple[int, bytes] | None:
        """(version, body) of a live cached book the caller may read, in one round trip."""
        try:
            if claims is None:
                version, body = await redis.hmget(book_key(book_id), ["v", "b"])
            else:
                pipe = redis.pipeline(transaction=False)
                pipe.hmget(book_key(book_id), ["v", "b"])
                pipe.exists(DENYLIST_PREFIX + claims.jti)
                (version, body), denied = await pipe.execute()
                if denied:
                    return None
        except RedisError:
            return None
        if version is None or not body:  # a miss, or a tombstone: the route answers
            return None
        return int(version), body.encode() if isinstance(body, str) else bytes(body)
