"""structlog for our events, and the standard library (uvicorn, celery, sqlalchemy) routed
through the same renderer, so every line is one JSON object (or a readable line in a TTY)."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

from pagely.core.context import request_id_var

# Keys never written to a log line, whatever a caller passes.
_REDACTED_KEYS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "link",
        "url_with_token",
        "secret",
    }
)


_HANDLER_NAME = "pagely"

# Secrets that travel in URLs, rewritten in every string of every log line (our events, the
# access log, and the standard library's records: uvicorn, httpx): the path segment after a
# route that takes a token in its path, and the value of a token-like query parameter.
_TOKEN_PATH_SEGMENTS = ("verify", "reset-password")
_TOKEN_QUERY_PARAMS = (
    "token", "access_token", "refresh_token", "id_token", "code", "key", "api_key", "apikey",
    "secret", "signature", "sig", "password",
)  # fmt: skip
_TOKEN_IN_PATH = re.compile(
    r"(/(?:" + "|".join(map(re.escape, _TOKEN_PATH_SEGMENTS)) + r")/)[^/?#\s\"']+",
    re.IGNORECASE,  # /Verify/<token> is a 404, but the token would still be logged
)
_TOKEN_IN_QUERY = re.compile(
    r"([?&;](?:[\w.-]*[_-])?(?:"
    + "|".join(map(re.escape, _TOKEN_QUERY_PARAMS))
    + r")=)[^&#\s\"']*",
    re.IGNORECASE,
)
# A cheap look before the regular expressions: most strings hold neither.
_HINTS = (*(f"/{segment}/" for segment in _TOKEN_PATH_SEGMENTS), "=")
REDACTED = "[redacted]"


def redact_url(text: str) -> str:
    """`text` with token path segments and token-like query values replaced by [redacted]."""
    if not any(hint in text for hint in _HINTS):
        return text
    text = _TOKEN_IN_PATH.sub(r"\1" + REDACTED, text)
    return _TOKEN_IN_QUERY.sub(r"\1" + REDACTED, text)


def _add_request_id(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    request_id = request_id_var.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def _add_trace_ids(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        event.setdefault("trace_id", format(span.trace_id, "032x"))
        event.setdefault("span_id", format(span.span_id, "016x"))
    return event


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in _REDACTED_KEYS.intersection(event):
        event[key] = REDACTED
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact_url(value)
    return event


def _redact_exception(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    # The traceback is rendered after the shared chain ran: an exception message may hold a URL.
    exception = event.get("exception")
    if isinstance(exception, str):
        event["exception"] = redact_url(exception)
    return event


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        _add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_exception,
            renderer,
        ],
    )
    # No caller lookup (file, line, function) per record: our lines never print it, and the
    # frame walk was a measurable part of every request (see docs/performance.md).
    logging._srcfile = None
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    # Replace our handler from an earlier call; leave others (pytest's capture) in place.
    root.handlers[:] = [h for h in root.handlers if h.get_name() != _HANDLER_NAME] + [handler]
    root.setLevel(level.upper())
    # Our middleware writes the access log; uvicorn's own would be a second, unstructured line.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
