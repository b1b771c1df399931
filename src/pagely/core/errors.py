"""One error hierarchy and one envelope for every error response.

Features subclass `AppError` next to their code (`BookNotFound(NotFound)` ...). The handlers
installed by `install_error_handlers` turn these, FastAPI's own 404/405/422 and any unexpected
exception into the same JSON body, always with the request id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi import params as params_module
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from pagely.core.context import request_id_var

log = structlog.get_logger("pagely.errors")


class ErrorDetail(BaseModel):
    field: str | None = None
    message: str


class ErrorBody(BaseModel):
    type: str
    message: str
    details: list[ErrorDetail] = []
    request_id: str | None = None


class ErrorEnvelope(BaseModel):
    """The body of every error response."""

    success: bool = False
    error: ErrorBody


# --- the registry of error types --------------------------------------------------------
# Every `error.type` the API can send, with its statuses and a message it comes with: each
# AppError subclass registers itself as it is defined, the few types answered without one
# are registered below. The contract's `ErrorType` enum is made from it (web/openapi.py);
# `error_payload` logs a type it does not hold, and a test checks every literal one is held.


_REGISTRY: dict[str, dict[int, str]] = {}  # type -> {status: the message it comes with}


def register_error_type(type_: str, status_code: int, message: str) -> str:
    _REGISTRY.setdefault(type_, {}).setdefault(status_code, message)
    return type_


def error_types() -> dict[str, dict[int, str]]:
    """Every registered type, by name, with its statuses and their messages."""
    return {name: dict(statuses) for name, statuses in sorted(_REGISTRY.items())}


class AppError(Exception):
    status_code: int = 400
    type: str = "bad_request"
    message: str = "Bad request"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        register_error_type(cls.type, cls.status_code, cls.message)

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.details = details
        self.headers = headers
        super().__init__(self.message)


class NotFound(AppError):
    status_code, type, message = 404, "not_found", "Not found"


class Unauthorized(AppError):
    status_code, type, message = 401, "unauthorized", "Authentication required"


class Forbidden(AppError):
    status_code, type, message = 403, "forbidden", "You are not allowed to do this"


class Conflict(AppError):
    status_code, type, message = 409, "conflict", "Conflict"


class ServiceUnavailable(AppError):
    status_code, type, message = 503, "service_unavailable", "A backing service is unavailable"


class Overloaded(AppError):
    """Local congestion, not an outage: too many requests in flight, or a wait for a pooled
    connection that ran out. The client retries after Retry-After; nothing is tripped."""

    status_code, type, message = 503, "overloaded", "The server is busy; retry shortly"

    def __init__(self, resource: str = "requests") -> None:
        super().__init__(headers={"Retry-After": "1"})
        self.resource = resource


# Statuses raised by routing, Starlette or the edge, with the stable type a client switches on
# and the message it comes with (the contract's examples show it; never HTTPStatus's phrase,
# which changes between Python versions).
_HTTP_TYPES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "You are not allowed to do this"),
    404: ("not_found", "No such resource"),
    405: ("method_not_allowed", "Method Not Allowed"),
    409: ("conflict", "Conflict"),
    412: ("precondition_failed", "The If-Match ETag is stale"),
    413: ("payload_too_large", "Request body too large"),
    415: ("unsupported_media_type", "The body must be JSON (Content-Type: application/json)"),
    422: ("validation_error", "Validation failed"),
    428: ("precondition_required", "If-Match is required"),
    429: ("rate_limited", "Too many requests; try again later"),
    431: ("headers_too_large", "Request headers too large"),
    500: ("internal_error", "Internal server error"),
    503: ("service_unavailable", "A backing service is unavailable, try again shortly"),
}
for _status, (_type, _message) in _HTTP_TYPES.items():
    register_error_type(_type, _status, _message)


def http_error_type(status_code: int) -> str:
    """The type an answer with this status carries when nothing more specific is named."""
    fallback = "bad_request" if status_code < 500 else "internal_error"
    return _HTTP_TYPES[status_code][0] if status_code in _HTTP_TYPES else fallback


def error_payload(
    status_code: int,
    message: str | None = None,
    *,
    type_: str | None = None,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The envelope; without a message, the one registered for the status."""
    type_ = type_ or http_error_type(status_code)
    if type_ not in _REGISTRY:  # a test checks every literal type is registered
        log.error("unregistered_error_type", type=type_, status=status_code)
    if message is None:
        message = _HTTP_TYPES[status_code][1] if status_code in _HTTP_TYPES else "Request failed"
    error: dict[str, Any] = {
        "type": type_,
        "message": message,
        "details": details or [],
        "request_id": request_id_var.get(),
    }
    return {"success": False, "error": error}


def error_response(
    status_code: int,
    message: str | None = None,
    *,
    type_: str | None = None,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_payload(status_code, message, type_=type_, details=details),
        status_code=status_code,
        headers=headers,
    )


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        message = str(err.get("msg", "invalid value"))
        if err.get("type") == "json_invalid":
            message = "Malformed JSON body"
            loc = loc[:1]
        details.append({"field": ".".join(loc) or None, "message": message})
    return details


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return error_response(
        exc.status_code, exc.message, type_=exc.type, details=exc.details, headers=exc.headers
    )


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """The methods some route answers at this path (Starlette's 405 names only the first
    route it matched, so `/books` said `Allow: GET` though it takes POST too). HEAD wherever
    GET is (the edge answers it)."""
    router = request.app.router
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in router.routes):
            allowed.append(method)
            if method == "GET":
                allowed.append("HEAD")
    return allowed


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "Request failed"
    if exc.status_code == 404 and message == "Not Found":
        message = "No such resource"
    if exc.status_code == 400 and message == "There was an error parsing the body":
        # FastAPI's answer to a body it cannot decode (invalid UTF-8, a broken form): the
        # same 422 as malformed JSON.
        details = [{"field": "body", "message": "Malformed body"}]
        return error_response(422, details=details)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Under a mount (static files) no route of ours matches: keep what Starlette said.
        headers["Allow"] = ", ".join(allowed_methods(request)) or headers.get("Allow", "GET, HEAD")
    return error_response(exc.status_code, message, headers=headers)


def _json_body_sent_as_something_else(request: Request) -> bool:
    """A body in another media type (text/plain, a form) for a route that reads JSON."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    params = getattr(dependant, "body_params", None)
    if not params or any(isinstance(p.field_info, params_module.Form) for p in params):
        return False
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return bool(media) and media != "application/json" and not media.endswith("+json")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if _json_body_sent_as_something_else(request):
        return error_response(415)
    return error_response(422, details=_validation_details(exc))


def _service_name(exc: Exception) -> str:
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return "redis"
    if isinstance(exc, DBAPIError):
        return "database"
    return "backing service"


def overload_response(exc: Exception) -> JSONResponse | None:
    """The 503 `overloaded` for local congestion (`Overloaded`, or SQLAlchemy's wait for a
    pooled connection running out), else None."""
    if isinstance(exc, PoolTimeoutError):
        exc = Overloaded("database pool")
    if not isinstance(exc, Overloaded):
        return None
    if exc.resource != "requests":  # a refused admission is in the access log already
        log.warning("overloaded", resource=exc.resource)
    return error_response(exc.status_code, exc.message, type_=exc.type, headers=exc.headers)


async def _overloaded(_: Request, exc: Exception) -> JSONResponse:
    response = overload_response(exc)
    assert response is not None
    return response


async def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
    service = _service_name(exc)
    log.warning(
        "dependency_unavailable", service=service, error=type(exc).__name__, path=request.url.path
    )
    name = "Redis" if service == "redis" else f"The {service}"
    return error_response(
        503, f"{name} is unavailable, try again shortly", headers={"Retry-After": "5"}
    )


def internal_error_response() -> JSONResponse:
    """The generic 500: the detail goes to the log, never to the client."""
    return error_response(500)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled_exception", path=request.url.path, method=request.method, exc_info=exc)
    return internal_error_response()


# SQLSTATEs that mean "the server is not serving this connection": class 08 (connection
# exceptions) and the operator's interventions (shutting down, starting up, crash recovery).
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03")


def is_connection_problem(exc: DBAPIError) -> bool:
    """Whether a database error means the database cannot be reached or is not serving (a
    503), rather than a fault in the statement (a 500). During a restart asyncpg reports
    "the database system is shutting down" as a plain DBAPIError: only its SQLSTATE tells."""
    if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
        return True
    state = str(getattr(exc.orig, "sqlstate", None) or "")
    return state.startswith(_UNAVAILABLE_STATES)


async def _db_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if is_connection_problem(exc):
        return await _dependency_down(request, exc)
    return await _unexpected(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Overloaded, _overloaded)
    app.add_exception_handler(PoolTimeoutError, _overloaded)
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Only "cannot reach it" is an outage; other Redis errors are bugs and stay 500s.
    app.add_exception_handler(RedisConnectionError, _dependency_down)
    app.add_exception_handler(RedisTimeoutError, _dependency_down)
    app.add_exception_handler(ConnectionError, _dependency_down)
    app.add_exception_handler(TimeoutError, _dependency_down)
    app.add_exception_handler(DBAPIError, _db_error)
    # Anything else is caught by EdgeMiddleware, which logs it with the request id
    # and answers the generic 500 (Starlette's ServerErrorMiddleware would re-raise it).


def declare(*errors: type[AppError], **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the errors an operation answers with, as `x-error-types` per
    status: `declare(BookNotFound, NotBookOwner, d404="No such book")`. The ones every
    operation of its kind gives (401 for a bearer token, 403 for its access, 413/415/422 for
    a body, 503 ...) are added from the route by web/openapi.py, which also writes the
    descriptions and examples."""
    responses: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        response = responses.setdefault(error.status_code, {"model": ErrorEnvelope})
        response.setdefault("x-error-types", []).append(error.type)
        if description := descriptions.get(f"d{error.status_code}"):
            response["description"] = description
    return responses
