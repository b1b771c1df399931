"""/notifications: the signed-in user's own notifications and notification preferences.
Unverified users may use them too: nothing here reaches anyone else."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from pagely.core.db import SessionDep
from pagely.core.errors import declare
from pagely.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery
from pagely.identity.dependencies import CurrentUser
from pagely.notifications import service
from pagely.notifications.errors import NotificationNotFound
from pagely.notifications.schemas import (
    Notification,
    NotificationPage,
    NotificationPreferences,
    NotificationPreferencesPatch,
    ReadAllOut,
)

router = APIRouter(prefix="/notifications", tags=["notifications"])


# The static paths come before "/{notification_id}/read" so they can never be taken for an id.


@router.get(
    "/preferences",
    operation_id="notifications_get_preferences",
    summary="My notification preferences",
    description="Which notifications also come by email.",
)
async def get_preferences(user: CurrentUser) -> NotificationPreferences:
    return NotificationPreferences.of(user)


@router.patch(
    "/preferences",
    operation_id="notifications_update_preferences",
    summary="Change my notification preferences",
    description="Only the fields sent change. `email_on_review: false` stops the emails about "
    "new reviews of my books; the in-app notifications continue.",
)
async def update_preferences(
    user: CurrentUser, session: SessionDep, body: NotificationPreferencesPatch
) -> NotificationPreferences:
    changes = body.model_dump(exclude_unset=True)
    updated = await service.update_preferences(session, user, **changes)
    return NotificationPreferences.of(updated)


@router.post(
    "/read-all",
    operation_id="notifications_read_all",
    summary="Mark all my notifications read",
    description="Answers how many were unread.",
)
async def read_all(user: CurrentUser, session: SessionDep) -> ReadAllOut:
    return ReadAllOut(updated=await service.mark_all_read(session, user.id))


@router.get(
    "",
    operation_id="notifications_list",
    summary="My notifications",
    description="Newest first, with cursor pagination. `unread=true` lists only the unread "
    "ones. `unread_count` counts all unread notifications, whatever the page.",
)
async def list_notifications(
    user: CurrentUser,
    session: SessionDep,
    unread: Annotated[bool, Query(description="Only the unread ones.")] = False,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> NotificationPage:
    listing = await service.list_notifications(
        session, user.id, unread_only=unread, limit=limit, cursor=cursor
    )
    return NotificationPage.of(listing)


@router.post(
    "/{notification_id}/read",
    operation_id="notifications_mark_read",
    summary="Mark one notification read",
    description="Idempotent: marking it again keeps the first `read_at`. Another user's "
    "notification answers 404 `notification_not_found`, like one that does not exist.",
    responses=declare(NotificationNotFound),
)
async def mark_read(
    user: CurrentUser, session: SessionDep, notification_id: uuid.UUID
) -> Notification:
    return Notification.of(await service.mark_read(session, user.id, notification_id))
