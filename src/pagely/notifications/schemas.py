from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, Field, RootModel, StrictBool, field_validator

from pagely.core.pagination import Page
from pagely.core.schemas import Strict, omit_null
from pagely.models.catalog import Notification as NotificationRow
from pagely.models.user import User

if TYPE_CHECKING:
    from pagely.notifications.service import NotificationList


class ReviewCreatedData(BaseModel):
    """What the app shows for a review of one of my books, as it was when it was made."""

    book_title: str
    reviewer_name: str
    rating: int = Field(ge=1, le=5)
    review_title: str | None


class _Notification(BaseModel):
    id: uuid.UUID
    book_id: uuid.UUID | None
    actor_id: uuid.UUID | None = Field(
        description="The user who caused it; null once they deleted their account."
    )
    read: bool
    read_at: datetime | None
    created_at: datetime


class ReviewCreatedNotification(_Notification):
    """Someone reviewed one of my books (`actor_id` is the reviewer)."""

    kind: Literal["review_created"]
    data: ReviewCreatedData


class Notification(RootModel[Annotated[ReviewCreatedNotification, Field(discriminator="kind")]]):
    """One schema per kind, told apart by `kind`: a generated client gets each kind's `data`
    typed. A new kind is a new member here, and a breaking change for clients that do not
    know it (docs/api-versioning.md)."""

    @classmethod
    def of(cls, row: NotificationRow) -> Notification:
        return cls.model_validate(
            {
                "id": row.id,
                "kind": row.kind,
                "book_id": row.book_id,
                "actor_id": row.actor_id,
                "data": row.data,
                "read": row.read_at is not None,
                "read_at": row.read_at,
                "created_at": row.created_at,
            }
        )


class NotificationPage(Page[Notification]):
    unread_count: int = Field(
        description="All of the user's unread notifications, not just this page's: the badge."
    )

    @classmethod
    def of(cls, listing: NotificationList) -> NotificationPage:
        return cls(
            items=[Notification.of(row) for row in listing.items],
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
        json_schema_extra=omit_null,
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
