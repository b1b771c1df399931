"""Queue monitoring for admins: what is waiting, what failed, and a retry button."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any, cast

import structlog
from celery import Celery
from fastapi import APIRouter, Query, status

from pagely.admin import service
from pagely.admin.schemas import OutboxCounts, OutboxItem, OutboxStats
from pagely.core import metrics
from pagely.core.db import SessionDep
from pagely.core.errors import documented
from pagely.core.pagination import (
    CursorQuery,
    LimitQuery,
    Page,
    created_cursor,
    decode_created_cursor,
    paginate,
)
from pagely.core.resources import Resources, ResourcesDep
from pagely.identity.dependencies import AdminUser
from pagely.models.outbox import OutboxStatus

log = structlog.get_logger("pagely.outbox")

router = APIRouter(
    prefix="/admin/outbox",
    tags=["admin"],
    responses={
        **documented(401, 403, d401="Missing or invalid access token", d403="Not an admin"),
    },
)


def _queue_depth(celery: Celery, queue: str) -> int:
    with celery.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1)
        channel = cast(Any, connection.default_channel)
        declared = channel.queue_declare(queue=queue, passive=True)
        return int(declared.message_count)


async def _broker_queue_depth(resources: Resources) -> int | None:
    """Best effort within the service timeout; a queue nobody declared yet is empty."""
    settings = resources.settings
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(_queue_depth, resources.celery, settings.celery_queue),
            settings.service_timeout_seconds,
        )
    except Exception as exc:
        if "NOT_FOUND" in str(exc):  # RabbitMQ: the queue does not exist yet
            return 0
        log.warning("broker_queue_depth_unavailable", error=type(exc).__name__)
        return None


@router.get(
    "/stats",
    operation_id="admin_outbox_stats",
    summary="Outbox and queue statistics",
    description="Messages by status, the age of the oldest pending one, failures in the last "
    "hour, the broker's queue depth and the delivery counters.",
)
async def outbox_stats(_: AdminUser, session: SessionDep, resources: ResourcesDep) -> OutboxStats:
    numbers = await service.stats(session)
    depth, counters = await asyncio.gather(
        _broker_queue_depth(resources), metrics.read_counters(resources.redis)
    )
    return OutboxStats(
        counts=OutboxCounts(**numbers["counts"]),
        oldest_pending_age_seconds=numbers["oldest_pending_age_seconds"],
        failed_last_hour=numbers["failed_last_hour"],
        broker_queue_depth=depth,
        counters=counters,
    )


@router.get(
    "",
    operation_id="admin_outbox_list",
    summary="List outbox messages",
    description="Newest first, with cursor pagination; filter by status.",
    responses=documented(422, d422="Invalid filter or cursor"),
)
async def outbox_list(
    _: AdminUser,
    session: SessionDep,
    status_filter: Annotated[OutboxStatus | None, Query(alias="status")] = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[OutboxItem]:
    after = decode_created_cursor(cursor)
    rows = await service.list_messages(session, status=status_filter, limit=limit + 1, after=after)
    rows, next_cursor = paginate(rows, limit, created_cursor)
    return Page[OutboxItem](items=[OutboxItem.of(row) for row in rows], next_cursor=next_cursor)


@router.post(
    "/{outbox_id}/retry",
    operation_id="admin_outbox_retry",
    summary="Retry a message",
    description="Gives a failed (or stuck pending) message a fresh set of attempts and "
    "dispatches it now.",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **documented(
            404, 409, d404="No such message", d409="Already sent, or being sent right now"
        ),
    },
)
async def outbox_retry(_: AdminUser, session: SessionDep, outbox_id: uuid.UUID) -> OutboxItem:
    row = await service.retry(session, outbox_id)
    return OutboxItem.of(row)
