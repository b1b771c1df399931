"""Development only: the mail captured by the embedded SMTP sink, as a page and as JSON.

Mounted by create_app only when ENVIRONMENT=development and DEV_MAIL_DIR is set.
"""

from __future__ import annotations

import mailbox
import re
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from pagely.core.errors import NotFound
from pagely.core.templating import templates

router = APIRouter(prefix="/dev", tags=["development"], include_in_schema=False)

_LINK = re.compile(r"""https?://[^\s"'<>]+[^\s"'<>.,;:!?)\]]""")


class CapturedMail(BaseModel):
    id: str
    to: list[str]
    subject: str
    text: str
    html: str
    links: list[str]
    received_at: datetime


def _part(message: Message, content_type: str) -> str:
    for part in message.walk():
        if part.get_content_type() == content_type and not part.is_multipart():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    return ""


def _received_at(message: mailbox.MaildirMessage) -> datetime:
    """When the sink received it (the Maildir delivery time), not the sender's Date header."""
    return datetime.fromtimestamp(message.get_date(), UTC)


def _links(text: str, html: str) -> list[str]:
    seen: dict[str, None] = {}
    for link in _LINK.findall(html) + _LINK.findall(text):
        seen.setdefault(link.replace("&amp;", "&"), None)
    return list(seen)


def read_mailbox(directory: str) -> list[CapturedMail]:
    box = mailbox.Maildir(directory, create=True)
    mails = []
    for key in list(box.iterkeys()):
        try:
            message = box.get_message(key)
        except (KeyError, FileNotFoundError):
            continue  # removed while we read
        text, html = _part(message, "text/plain"), _part(message, "text/html")
        recipients = message.get_all("To", []) or [message.get("X-Envelope-To", "")]
        mails.append(
            CapturedMail(
                id=key,
                to=[addr for _, addr in getaddresses(recipients) if addr],
                subject=str(message.get("Subject", "")),
                text=text,
                html=html,
                links=_links(text, html),
                received_at=_received_at(message),
            )
        )
    mails.sort(key=lambda m: m.received_at, reverse=True)
    return mails


def _mail_dir(request: Request) -> str:
    directory: str = request.app.state.settings.dev_mail_dir
    return directory


@router.get("/mail.json")
async def mail_json(request: Request) -> list[CapturedMail]:
    return read_mailbox(_mail_dir(request))


@router.get("/mail", response_class=HTMLResponse)
async def mail_page(request: Request) -> HTMLResponse:
    mails = read_mailbox(_mail_dir(request))
    return templates.TemplateResponse(request, "dev/mail_list.html", {"mails": mails})


@router.get("/mail/{mail_id}", response_class=HTMLResponse)
async def mail_message(request: Request, mail_id: str) -> HTMLResponse:
    for mail in read_mailbox(_mail_dir(request)):
        if mail.id == mail_id:
            return templates.TemplateResponse(request, "dev/mail_message.html", {"mail": mail})
    raise NotFound("No such message")
