"""Reading the Maildir the embedded SMTP sink delivers to: every message, parsed for the
mail pages, newest first."""

from __future__ import annotations

import mailbox
import os
import re
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses

from pagely.devmail.errors import CapturedMailNotFound
from pagely.devmail.schemas import CapturedMail

_LINK = re.compile(r"""https?://[^\s"'<>]+[^\s"'<>.,;:!?)\]]""")


def read_mailbox(directory: str) -> list[CapturedMail]:
    # A directory that exists but is not a Maildir yet (an empty DEV_MAIL_DIR made by hand) is
    # an empty mailbox, not an error: Maildir(create=True) only makes a missing directory.
    for part in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(directory, part), exist_ok=True)
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


def find_mail(directory: str, mail_id: str) -> CapturedMail:
    for mail in read_mailbox(directory):
        if mail.id == mail_id:
            return mail
    raise CapturedMailNotFound()


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
