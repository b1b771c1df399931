"""Error reporting to Sentry, when SENTRY_DSN is set (off otherwise: the SDK is not even
imported). The API and the worker report unhandled exceptions (they reach Sentry through the
`unhandled_exception` log line, and through Celery's task failures), scrubbed before they
leave the process: no local variables, no request bodies, no cookies or auth headers, and in
every string that remains, passwords, tokens (`token=...`), links with tokens and email
addresses replaced.
Tracing stays OpenTelemetry's (core/telemetry.py): Sentry samples no transactions."""

from __future__ import annotations

import re
from typing import Any

import structlog

from pagely import __version__
from pagely.core.logging import REDACTED, redact_url
from pagely.settings import Settings

log = structlog.get_logger("pagely.errorreporting")

# Keys whose values never leave the process, wherever they appear in an event.
_SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|authorization|cookie|session|api[-_]?key|dsn|link|jwt|csrf",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
EMAIL_REDACTED = "[email]"
# `token=...` and the like in free text (an exception's message), not only in URLs.
_ASSIGNED_SECRET = re.compile(
    r"\b(\w*(?:token|password|passwd|secret|api_?key))(\s*[=:]\s*)([^\s&,;'\")]+)",
    re.IGNORECASE,
)

_enabled = False


def scrub(value: Any, key: str = "") -> Any:
    """`value` with every secret-named entry redacted and every string cleaned of tokens in
    URLs and of email addresses (recursively through dicts, lists and tuples)."""
    if key and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        # Headers come as [name, value] pairs: the name decides for the value.
        if len(value) == 2 and isinstance(value[0], str) and _SECRET_KEY.search(value[0]):
            return [value[0], REDACTED]
        return [scrub(item) for item in value]
    if isinstance(value, str):
        cleaned = _ASSIGNED_SECRET.sub(rf"\1\2{REDACTED}", redact_url(value))
        return _EMAIL.sub(EMAIL_REDACTED, cleaned)
    return value


def report(exc: BaseException) -> None:
    """Send an unhandled exception (the edge's last resort, which answers the generic 500);
    nothing when reporting is off."""
    if _enabled:
        import sentry_sdk

        sentry_sdk.capture_exception(exc)


def _before_send(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
    scrubbed: dict[str, Any] = scrub(event)
    return scrubbed


def _before_breadcrumb(crumb: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
    scrubbed: dict[str, Any] = scrub(crumb)
    return scrubbed


def configure_error_reporting(settings: Settings, component: str) -> bool:
    """Start the SDK in this process when SENTRY_DSN is set; True when it did."""
    global _enabled
    if settings.sentry_dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.environment,
        release=f"pagely@{__version__}",
        server_name=component,
        # Nothing about the caller, no cookies, bodies, query values or frame variables.
        data_collection={
            "user_info": False,
            "http_bodies": [],
            "stack_frame_variables": False,
            "database_query_data": False,
        },
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=0.0,
        before_send=_before_send,  # type: ignore[arg-type]
        before_breadcrumb=_before_breadcrumb,
        # Log lines are breadcrumbs, never events: the exception itself is reported (`report`,
        # Celery's task failures), with its stack, once.
        # A 5xx the handlers answered on purpose (503 overloaded or a dependency down) is
        # not an error to report: under overload it would flood the project.
        integrations=[
            LoggingIntegration(event_level=None),
            StarletteIntegration(failed_request_status_codes=set()),
            FastApiIntegration(failed_request_status_codes=set()),
        ],
    )
    sentry_sdk.set_tag("component", component)
    _enabled = True
    log.info("error_reporting_on", component=component)
    return True


def stop_error_reporting() -> None:
    """Send what is queued and stop (a process's end; tests)."""
    global _enabled
    if _enabled:
        import sentry_sdk

        sentry_sdk.get_client().close()
        sentry_sdk.init()  # no DSN: a client that sends nothing
        _enabled = False
