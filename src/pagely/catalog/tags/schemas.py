"""Response bodies of tags."""

from __future__ import annotations

from pydantic import BaseModel


class TagOut(BaseModel):
    slug: str
    book_count: int
