"""Build a MIME message (plain text plus HTML alternative) and hand it to the SMTP server."""

from __future__ import annotations

import email.utils
from email.headerregistry import Address
from email.message import EmailMessage

import aiosmtplib
from opentelemetry.trace import SpanKind, StatusCode

from pagely.core import telemetry
from pagely.core.mail.render import RenderedEmail
from pagely.settings import Settings


class PermanentSMTPError(Exception):
    """The server rejected the message for good (5xx): retrying will not help."""


def message_domain(settings: Settings) -> str:
    _, address = email.utils.parseaddr(settings.mail_from)
    return address.rpartition("@")[2] or "pagely.local"


def build_message(
    settings: Settings, rendered: RenderedEmail, *, to: str, message_id: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = Address(addr_spec=to)
    message["Subject"] = rendered.subject
    message["Date"] = email.utils.formatdate(usegmt=True)
    # Stable per outbox row: a receiver (or a test) can tell a resend from a new message.
    message["Message-ID"] = f"<{message_id}@{message_domain(settings)}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


async def send_message(settings: Settings, message: EmailMessage) -> None:
    if not settings.smtp_host:
        raise aiosmtplib.SMTPConnectError("SMTP_HOST is not set")
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    with telemetry.tracer.start_as_current_span(
        "smtp.send",
        kind=SpanKind.CLIENT,
        attributes={"server.address": settings.smtp_host, "server.port": settings.smtp_port},
        # The exception's message can quote the recipient: only its type goes on the span.
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            await _send(settings, message, settings.smtp_host, password)
        except Exception as exc:
            span.set_status(StatusCode.ERROR, type(exc).__name__)
            span.set_attribute("error.type", type(exc).__name__)
            raise


async def _send(
    settings: Settings, message: EmailMessage, hostname: str, password: str | None
) -> None:
    try:
        await aiosmtplib.send(
            message,
            hostname=hostname,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=password,
            use_tls=settings.smtp_security == "tls",
            start_tls=settings.smtp_security == "starttls",
            timeout=settings.smtp_timeout_seconds,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [refused.code for refused in exc.recipients]
        if codes and all(code >= 500 for code in codes):
            raise PermanentSMTPError(_describe(exc)) from exc
        raise
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code >= 500:
            raise PermanentSMTPError(_describe(exc)) from exc
        raise


def _describe(exc: Exception) -> str:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    return str(exc)


def describe_error(exc: BaseException) -> str:
    """One line for `outbox.last_error`: the server's answer, never the message itself."""
    cause = exc.__cause__ if isinstance(exc, PermanentSMTPError) else exc
    text = _describe(cause) if isinstance(cause, Exception) else str(exc)
    return f"{type(cause or exc).__name__}: {text}"[:500]
