"""Per-request context shared by middleware, logs and error bodies."""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
