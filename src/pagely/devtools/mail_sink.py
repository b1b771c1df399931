"""The development SMTP server: every message into a Maildir, which the /dev/mail pages read."""

from __future__ import annotations

import mailbox
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from pagely.devtools.processes import free_port


class MaildirHandler:
    """aiosmtpd handler that keeps every message in a Maildir, read by the /dev/mail page."""

    def __init__(self, directory: Path) -> None:
        self.maildir = mailbox.Maildir(directory, create=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message: Message = message_from_bytes(envelope.content)
        if "X-Envelope-To" not in message:
            message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.maildir.add(message)
        return "250 Message accepted"


class MaildirSmtpServer:
    """The development SMTP server: accepts every message into `<home>/mail`, a Maildir."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "mail"
        self._controller: Any = None

    def start(self) -> tuple[str, int, str]:
        from aiosmtpd.controller import Controller

        port = free_port()
        self._controller = Controller(MaildirHandler(self.dir), hostname="127.0.0.1", port=port)
        self._controller.start()
        return "127.0.0.1", port, str(self.dir.resolve())

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
