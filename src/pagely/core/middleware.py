"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task per request and breaks streaming).

Order, outermost first: CORS (when configured) -> Edge -> the app (the catalog's fast path,
then FastAPI). The edge is one class rather than four on purpose: it reads the headers once
and costs one extra call per request, where four layers each walked the header list (see
docs/performance.md).
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pagely.core import errorreporting
from pagely.core.context import request_id_var
from pagely.core.errors import (
    error_response,
    internal_error_response,
    overload_response,
    register_error_type,
)
from pagely.core.metrics import HTTP_DURATION, HTTP_REQUESTS, REQUESTS_SHED, UNMATCHED_ROUTE
from pagely.core.security_headers import SecurityHeaders

access_log = structlog.get_logger("pagely.access")
error_log = structlog.get_logger("pagely.errors")

# Paths of probes and scrapers: never shed, never refused for their Host.
_PROBES = ("/health", "/metrics")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_MAX_RETRY_AFTER = 16
_RETRY_AFTER = [str(seconds).encode() for seconds in range(1, _MAX_RETRY_AFTER + 1)]
INVALID_HOST = register_error_type("invalid_host", 400, "Invalid host header")
_SHED_BODY = (
    b'{"success":false,"error":{"type":"overloaded","message":"The server is busy; retry '
    b'shortly","details":[],"request_id":"%s"}}'
)


class _BodyTooLarge(HTTPException):
    """Raised from `receive`; an HTTPException so FastAPI's body parser lets it through."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            413, f"Request body larger than {max_bytes} bytes", {"Connection": "close"}
        )


class HostCheck:
    """Allowed Host headers: exact names and `*.suffix` patterns; `*` allows any."""

    def __init__(self, allowed_hosts: list[str]) -> None:
        self.allow_any = "*" in allowed_hosts
        self.exact = {h.lower() for h in allowed_hosts if not h.startswith("*.")}
        self.suffixes = tuple(h[1:].lower() for h in allowed_hosts if h.startswith("*."))

    def allows(self, host: str) -> bool:
        if self.allow_any:
            return True
        host = host.lower().rsplit(":", 1)[0] if not host.startswith("[") else host.lower()
        return host in self.exact or (bool(self.suffixes) and host.endswith(self.suffixes))


class EdgeMiddleware:
    """Everything every HTTP request passes through, in one layer:

    - the request id (the client's `X-Request-ID` when it is sane, else a new one), echoed with
      `X-Process-Time`, bound for every log line of the request;
    - admission control: beyond `max_in_flight` requests at once, 503 `overloaded` with
      Retry-After at once, before any routing or I/O, so the admitted keep their latency
      (`/health*` and `/metrics` exempt, so an orchestrator never kills a busy process and
      its metrics are scraped when they matter most); local congestion
      met later (a pool wait that ran out) is the same 503;
    - the Host check (400 `invalid_host`; `/health*` and `/metrics` are exempt for probes and
      scrapers, which call the machine's address);
    - NUL characters in the query string (422: PostgreSQL cannot hold them);
    - the header limits (431: their total size and their number);
    - the body limit (413, by Content-Length up front or by counting a chunked body);
    - the security headers (core/security_headers.py: nosniff, HSTS when public over https, and
      on HTML pages a Content-Security-Policy, no framing, a Referrer-Policy);
    - one access-log line (core/logging.py redacts tokens in it), and the last-resort 500
      logged with the request id.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: list[str],
        max_body_bytes: int,
        max_header_bytes: int = 16_384,
        max_header_count: int = 100,
        https: bool = False,
        max_in_flight: int = 1_000_000,
    ) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0  # one event loop per process: a plain counter is exact
        self.shed = 0  # refused since the last `requests_shed` line
        self._shed_logged_at = 0.0
        self._shed_per_second = 0.0  # over the last such window
        self.hosts = HostCheck(allowed_hosts)
        self.max_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_header_count = max_header_count
        self.security = SecurityHeaders(https=https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan; the app serves no websockets
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = host = length = None
        chunked = False
        header_bytes = 0
        for key, value in scope["headers"]:  # the first of a repeated header, as Starlette
            header_bytes += len(key) + len(value)
            if key == b"x-request-id" and request_id is None:
                request_id = value.decode("latin-1")
            elif key == b"host" and host is None:
                host = value.decode("latin-1")
            elif key == b"content-length" and length is None:
                length = value
            elif key == b"transfer-encoding":
                chunked = True
        if not request_id or not _VALID_REQUEST_ID.match(request_id):
            request_id = secrets.token_hex(16)
        health = scope["path"].startswith(_PROBES)
        if self.in_flight >= self.max_in_flight and not health:
            await self._shed(send, request_id, start)
            return
        token = request_id_var.set(request_id)
        status = 500
        started = False
        security = self.security
        method = scope["method"]
        head = method == "HEAD"
        if head:  # answered as the GET it asks about, with the same headers and no body
            scope = {**scope, "method": "GET"}

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", ()))
                security.extend(headers)
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-process-time", f"{time.perf_counter() - start:.6f}".encode()))
                message = {**message, "headers": headers}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        admitted = not health
        if admitted:
            self.in_flight += 1
        try:
            refusal = self._refusal(scope, host, length, header_bytes)
            if refusal is not None:
                await refusal(scope, receive, send_wrapper)
            elif chunked or length is None or not length.isdigit():
                # No trustworthy length (chunked, HTTP/2, or none): count what arrives.
                await self.app(scope, self._counting(receive), send_wrapper)
            else:  # a declared length within the limit; the server enforces it
                await self.app(scope, receive, send_wrapper)
        except _BodyTooLarge:
            if started:
                raise
            await self._too_large()(scope, receive, send_wrapper)
        except Exception as exc:  # the last resort: log it with the request id, answer generic 500
            overloaded = overload_response(exc)  # met before FastAPI (the catalog's fast path)
            if overloaded is not None and not started:
                await overloaded(scope, receive, send_wrapper)
                return
            error_log.error(
                "unhandled_exception",
                path=scope.get("path"),
                method=scope.get("method"),
                exc_info=exc,
            )
            errorreporting.report(exc)
            if not started:
                await internal_error_response()(scope, receive, send_wrapper)
        finally:
            if admitted:
                self.in_flight -= 1
            fields: dict[str, Any] = {
                "method": method,
                "path": scope.get("path"),
                "status": status,
                "duration_ms": round((time.perf_counter() - start) * 1000, 3),
            }
            state = scope.get("state") or {}
            user_id = state.get("user_id")
            if user_id is not None:
                fields["user_id"] = str(user_id)
            if "trace_id" in state:  # the request's span (core/telemetry.py), ended by now
                fields["trace_id"], fields["span_id"] = state["trace_id"], state["span_id"]
            route = scope.get("route")
            if route is not None:
                fields["route"] = getattr(route, "path", None)
            elif "route_path" in state:  # answered before routing (the catalog's fast path)
                fields["route"] = state["route_path"]
                fields["fast_path"] = True
            access_log.info("request", **fields)
            _count(fields["method"], fields.get("route"), status, time.perf_counter() - start)
            request_id_var.reset(token)

    async def _shed(self, send: Send, request_id: str, start: float) -> None:
        """503 `overloaded`, as cheaply as a response can be made: it is sent most when the
        process is busiest, and every microsecond spent on it is taken from an admitted
        request. No access-log line each (a summary at most once a second).

        Retry-After is drawn at random, so refused clients do not all come back in the same
        instant: from 1-2 s when a few are refused up to 1-16 s when many are (one more second
        of spread per `max_in_flight` / 4 refusals a second). The harder the process is pushed,
        the fewer refusals it has to spend its time on: a client refused at 30 times the
        capacity cannot be served sooner anyway. KEEP_ALIVE_SECONDS outlasts the longest wait,
        so the client comes back on its open connection.

        The rate is the last second's, or the current second's count so far when that is
        higher: a burst (a thousand clients reconnecting at once) is spread as it arrives,
        not a second later, when the first of it has already been told to come back together."""
        self.shed += 1
        REQUESTS_SHED.inc()
        now = time.monotonic()
        if now - self._shed_logged_at >= 1.0:
            self._shed_per_second = self.shed / (now - self._shed_logged_at)
            access_log.warning("requests_shed", count=self.shed, max_in_flight=self.max_in_flight)
            self.shed, self._shed_logged_at = 0, now
        per_second = max(1, self.max_in_flight // 4)
        rate = max(self._shed_per_second, self.shed)  # this second's count is at most its rate
        spread = min(_MAX_RETRY_AFTER, 2 + int(rate) // per_second)
        body = _SHED_BODY % request_id.encode()  # the id matched _VALID_REQUEST_ID: no escaping
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", _RETRY_AFTER[secrets.randbelow(spread)]),
            *self.security.common,
            (b"x-request-id", request_id.encode()),
            (b"x-process-time", f"{time.perf_counter() - start:.6f}".encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _refusal(
        self, scope: Scope, host: str | None, length: bytes | None, header_bytes: int
    ) -> Any:
        """The error response for a request refused before the app, or None."""
        if header_bytes > self.max_header_bytes or len(scope["headers"]) > self.max_header_count:
            return error_response(
                431,
                f"Request headers larger than {self.max_header_bytes} bytes "
                f"or more than {self.max_header_count}",
                type_="headers_too_large",
                headers={"Connection": "close"},
            )
        # Probes and scrapers use the machine's address as Host: let them through.
        if not self.hosts.allows(host or "") and not scope["path"].startswith(_PROBES):
            return error_response(400, "Invalid host header", type_=INVALID_HOST)
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return self._too_large()
        if b"%00" in scope.get("query_string", b""):
            return error_response(
                422, details=[{"field": "query", "message": "NUL characters are not allowed"}]
            )
        return None

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        return counting_receive

    def _too_large(self) -> Any:
        return error_response(
            413, f"Request body larger than {self.max_bytes} bytes", headers={"Connection": "close"}
        )


def _count(method: str, route: str | None, status: int, seconds: float) -> None:
    """The request in the HTTP metrics: labelled by route template (a path no route took is
    `unmatched`) and a known method, so no client can grow the label sets."""
    method = method if method in _METHODS else "other"
    route = route or UNMATCHED_ROUTE
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)
