"""Request and response bodies of reviews."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from pagely.core.schemas import NamedEnum, Strict, omit_null


class ReviewSort(NamedEnum):
    """A book's reviews' orders (a named schema in the contract)."""

    newest = "newest"
    rating = "rating"
    rating_desc = "-rating"


Rating = Annotated[int, Field(ge=1, le=5, description="1 to 5 stars.")]
ReviewTitle = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
ReviewBody = Annotated[str, StringConstraints(max_length=5000)]


class ReviewIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"rating": 5, "title": "A classic", "body": "Read it twice."}]
        },
    )

    rating: Rating
    title: ReviewTitle | None = None
    body: ReviewBody = ""


class ReviewPatch(Strict):
    rating: Rating | None = Field(default=None, examples=[4], json_schema_extra=omit_null)
    title: ReviewTitle | None = None
    body: ReviewBody | None = Field(default=None, json_schema_extra=omit_null)

    @field_validator("rating", "body")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value


class ReviewOut(BaseModel):
    book_id: uuid.UUID
    user_id: uuid.UUID
    user_name: str
    rating: int
    title: str | None
    body: str
    created_at: datetime
    updated_at: datetime


class RatingSummary(BaseModel):
    rating_avg: float
    rating_count: int
    histogram: dict[str, int] = Field(description='Reviews per star, "1" to "5".')


class ReviewPage(RatingSummary):
    items: list[ReviewOut]
    next_cursor: str | None = None


class ReviewCreated(ReviewOut):
    book: RatingSummary
