from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, StrictBool, field_validator

from pagely.core.pagination import Page
from pagely.core.schemas import Strict
from pagely.models.catalog import Notification
from pagely.models.user import User

if TYPE_CHECKING:
    from pagely.notifications.service import NotificationList


class NotificationOut(BaseModel):
    id: uuid.UUID
    kind: str = Field(
        description="What happened. Today only `review_created`.", examples=["review_created"]
    )
    book_id: uuid.UUID | None
    actor_id: uuid.UUID | None = Field(
        description="The user who caused it (the reviewer); null once they deleted their account."
    )
    data: dict[str, Any] = Field(
        description="What the app shows, as it was when the notification was made. For "
        "`review_created`: book_title, reviewer_name, rating (1-5), review_title (or null).",
    )
    read: bool
    read_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: Notification) -> NotificationOut:
        return cls(
            id=row.id,
            kind=row.kind,
            book_id=row.book_id,
            actor_id=row.actor_id,
            data=row.data,
            read=row.read_at is not None,
            read_at=row.read_at,
            created_at=row.created_at,
        )


class NotificationPage(Page[NotificationOut]):
    unread_count: int = Field(
        description="All of the user's unread notifications, not just this page's: the badge."
    )

    @classmethod
    def of(cls, listing: NotificationList) -> NotificationPage:
        return cls(
            items=[NotificationOut.of(row) for row in listing.items],
            next_cursor=listing.next_cursor,
            unread_count=listing.unread_count,
        )


class ReadAllOut(BaseModel):
    updated: int = Field(description="How many notifications were unread and are now read.")


class NotificationPreferences(BaseModel):
    email_on_review: bool = Field(description="Email me when someone reviews one of my books.")

    @classmethod
    def of(cls, user: User) -> NotificationPreferences:
        return cls(email_on_review=user.email_on_review)


class NotificationPreferencesPatch(Strict):
    """Only the fields sent change. Values must be JSON booleans (`"yes"` or `1` is a 422)."""

    email_on_review: StrictBool | None = Field(
        default=None,
        description="Email me when someone reviews one of my books.",
        examples=[False],
    )

    @field_validator("email_on_review")
    @classmethod
    def _not_null(cls, value: bool | None) -> bool:
        # Runs only for values sent (defaults are not validated): an explicit null is a 422.
        if value is None:
            raise ValueError("must be true or false")
        return value
