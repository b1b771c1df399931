"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task per request and breaks streaming).

Order, outermost first: CORS -> RequestContext (id, timing, access log, last-resort 500) ->
TrustedHost -> BodySizeLimit -> the app.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pagely.core.context import request_id_var
from pagely.core.errors import error_response, internal_error_response

access_log = structlog.get_logger("pagely.access")
error_log = structlog.get_logger("pagely.errors")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestContextMiddleware:
    """Request id in and out, X-Process-Time, one access-log line, and the generic 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else secrets.token_hex(16)
        )
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", ()))
                elapsed = time.perf_counter() - start
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-process-time", f"{elapsed:.6f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:  # the last resort: log it with the request id, answer generic 500
            error_log.error(
                "unhandled_exception",
                path=scope.get("path"),
                method=scope.get("method"),
                exc_info=exc,
            )
            if not started:
                await internal_error_response()(scope, receive, send_wrapper)
        finally:
            fields: dict[str, Any] = {
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status,
                "duration_ms": round((time.perf_counter() - start) * 1000, 3),
            }
            user_id = scope.get("state", {}).get("user_id")
            if user_id is not None:
                fields["user_id"] = str(user_id)
            route = scope.get("route")
            if route is not None:
                fields["route"] = getattr(route, "path", None)
            access_log.info("request", **fields)
            request_id_var.reset(token)


class TrustedHostMiddleware:
    """Starlette's TrustedHostMiddleware answers plain text; this one answers the envelope."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allow_any = "*" in allowed_hosts
        self.exact = {h.lower() for h in allowed_hosts if not h.startswith("*.")}
        self.suffixes = tuple(h[1:].lower() for h in allowed_hosts if h.startswith("*."))

    def _allowed(self, host: str) -> bool:
        host = host.lower().rsplit(":", 1)[0] if not host.startswith("[") else host.lower()
        return host in self.exact or (bool(self.suffixes) and host.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Health probes from load balancers use the machine's address as Host: let them through.
        if (
            self.allow_any
            or scope["type"] not in ("http", "websocket")
            or scope.get("path", "").startswith("/health")
        ):
            await self.app(scope, receive, send)
            return
        if self._allowed(_header(scope, b"host") or ""):
            await self.app(scope, receive, send)
            return
        await error_response(400, "Invalid host header", type_="invalid_host")(scope, receive, send)


class _BodyTooLarge(HTTPException):
    """Raised from `receive`; an HTTPException so FastAPI's body parser lets it through."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            413, f"Request body larger than {max_bytes} bytes", {"Connection": "close"}
        )


class BodySizeLimitMiddleware:
    """413 for bodies over the limit, by Content-Length up front or by counting a streamed body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if response_started:
                raise
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, f"Request body larger than {self.max_bytes} bytes", headers={"Connection": "close"}
        )
        await response(scope, receive, send)


class RejectNulMiddleware:
    """422 for a NUL character in the query string: PostgreSQL cannot store or compare text
    holding one, so it must never reach a query. (JSON bodies are checked by the schemas.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and b"%00" in scope.get("query_string", b""):
            response = error_response(
                422,
                "Validation failed",
                details=[{"field": "query", "message": "NUL characters are not allowed"}],
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
