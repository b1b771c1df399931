"""Conditional requests (RFC 9110) and the answer a cached JSON body gets: one builder for the
status, headers and body, used by the routes and by the catalog's fast path alike, so both
send the same bytes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from starlette.responses import Response

# Public catalog data: a client may keep it, but revalidates (cheap 304s via the ETag).
REVALIDATE = "public, no-cache"
JSON = "application/json"

RawHeaders = list[tuple[bytes, bytes]]

_CACHE_CONTROL = REVALIDATE.encode()
_JSON = JSON.encode()


@dataclass(frozen=True)
class Representation:
    """A JSON body and its ETag: what a read answers (a 304 when the client has it)."""

    body: bytes
    etag: str


def version_etag(version: int) -> str:
    """The strong ETag of a versioned resource (a book)."""
    return f'"v{version}"'


def body_etag(body: bytes) -> str:
    """The weak ETag of a body that carries no version (a cached list)."""
    return f'W/"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'


def none_match(header: str | None, tag: str) -> bool:
    """Whether an If-None-Match header names `tag` (weak comparison) or is `*`: a 304."""
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or tag.removeprefix("W/") in tags


def if_match(header: str, tag: str) -> bool:
    """Strong comparison (RFC 9110): a weak tag never matches; `*` matches any resource."""
    return any(candidate.strip() in ("*", tag) for candidate in header.split(","))


def revalidated_json(body: bytes, tag: str, if_none_match: str | None) -> tuple[int, RawHeaders]:
    """Status and headers for a JSON body with this ETag: 304 (no body) when the client holds
    it already, else 200. The header order is the one Starlette gives a `Response`."""
    headers = [(b"etag", tag.encode()), (b"cache-control", _CACHE_CONTROL)]
    if none_match(if_none_match, tag):
        return 304, headers
    headers.append((b"content-length", str(len(body)).encode()))
    headers.append((b"content-type", _JSON))
    return 200, headers


class RawResponse(Response):
    """A response whose status and headers are already built (by `revalidated_json`)."""

    def __init__(self, status_code: int, headers: RawHeaders, body: bytes) -> None:
        super().__init__(body if status_code == 200 else b"", status_code)
        self.raw_headers = headers


def revalidated_response(representation: Representation, if_none_match: str | None) -> Response:
    body = representation.body
    status_code, headers = revalidated_json(body, representation.etag, if_none_match)
    return RawResponse(status_code, headers, body)


def _quality(accept: str, media: str) -> tuple[float, int]:
    """The q of `media` in an Accept header, and how specifically the range that gave it
    names it (2 the media type itself, 1 `type/*`, 0 `*/*`); (0, 0) when none does."""
    kind = media.split("/", 1)[0] + "/*"
    found: dict[str, float] = {}
    for part in accept.split(","):
        name, *params = (piece.strip() for piece in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
                q = q if q == q else 0.0  # NaN
        found.setdefault(name.lower(), q)
    for specificity, candidate in ((2, media), (1, kind), (0, "*/*")):
        if candidate in found:
            return found[candidate], specificity
    return 0.0, 0


def prefers_json(accept: str | None) -> bool:
    """Whether a client that may get HTML or JSON asked for JSON over HTML: a higher q, or
    the same q with JSON named and HTML only matched by a wildcard. A browser's
    `text/html,...,*/*;q=0.8` gets HTML; `application/json, */*` (axios) gets JSON."""
    if not accept:
        return False
    json_q, json_named = _quality(accept, JSON)
    html_q, html_named = _quality(accept, "text/html")
    return json_q > html_q or (json_q == html_q > 0 and json_named > html_named)
