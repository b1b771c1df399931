"""Queue monitoring, for holders of `outbox:manage`: what is waiting, what failed, and a retry
button."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from pagely.admin import service
from pagely.admin.errors import AlreadySent, MessageBusy, OutboxMessageNotFound
from pagely.admin.schemas import OutboxItem, OutboxStats
from pagely.core.db import SessionDep
from pagely.core.errors import declare
from pagely.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from pagely.core.resources import DispatcherDep, RedisDep
from pagely.identity.dependencies import OutboxManager
from pagely.models.outbox import OutboxStatus

router = APIRouter(prefix="/admin/outbox", tags=["admin"])


@router.get(
    "/stats",
    operation_id="admin_outbox_stats",
    summary="Outbox and queue statistics",
    description="Messages by status, the age of the oldest pending one, failures in the last "
    "hour, the broker's queue depth and the delivery counters.",
)
async def outbox_stats(
    _: OutboxManager, session: SessionDep, redis: RedisDep, dispatcher: DispatcherDep
) -> OutboxStats:
    return OutboxStats.of(await service.report(session, redis, dispatcher))


@router.get(
    "",
    operation_id="admin_outbox_list",
    summary="List outbox messages",
    description="Newest first, with cursor pagination; filter by status.",
)
async def outbox_list(
    _: OutboxManager,
    session: SessionDep,
    status_filter: Annotated[OutboxStatus | None, Query(alias="status")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[OutboxItem]:
    rows, next_cursor = await service.list_messages(
        session, status=status_filter, limit=limit, cursor=cursor
    )
    return Page[OutboxItem](items=[OutboxItem.of(row) for row in rows], next_cursor=next_cursor)


@router.post(
    "/{outbox_id}/retry",
    operation_id="admin_outbox_retry",
    summary="Retry a message",
    description="Gives a failed (or stuck pending) message a fresh set of attempts and "
    "dispatches it now.",
    status_code=status.HTTP_202_ACCEPTED,
    responses=declare(
        OutboxMessageNotFound,
        AlreadySent,
        MessageBusy,
        d409="Already sent, or being sent right now",
    ),
)
async def outbox_retry(_: OutboxManager, session: SessionDep, outbox_id: uuid.UUID) -> OutboxItem:
    return OutboxItem.of(await service.retry(session, outbox_id))
