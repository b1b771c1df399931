from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class CapturedMail(BaseModel):
    """One message the development SMTP sink received, as the mail page shows it."""

    id: str
    to: list[str]
    subject: str
    text: str
    html: str
    links: list[str]
    received_at: datetime
