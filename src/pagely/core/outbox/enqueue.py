"""Writing an email to the outbox, in the caller's transaction, with its dispatch after commit."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from pagely.core.db import after_commit
from pagely.core.mail.render import check_template
from pagely.core.outbox.dispatch import DISPATCHER_INFO_KEY, Dispatcher
from pagely.models.outbox import OutboxMessage, OutboxStatus

EMAIL = "email"
_PENDING_IDS_INFO_KEY = "pagely.outbox.pending_ids"


async def enqueue_email(
    session: AsyncSession,
    *,
    template: str,
    to: str,
    context: dict[str, Any],
    key: str,
) -> uuid.UUID | None:
    """Write an email to the outbox in the caller's transaction. It is sent after the commit,
    and never if the transaction rolls back.

    `key` makes the call idempotent: a second call with the same key (a retried request, a
    duplicate event) writes nothing and returns None. `context` must be JSON-serialisable;
    it may hold tokens, so it is never logged or listed.
    """
    check_template(template)  # a typo fails the request that made it, not a worker later
    statement = (
        insert(OutboxMessage)
        .values(
            id=uuid.uuid4(),
            kind=EMAIL,
            payload={"template": template, "to": to, "context": context},
            idempotency_key=key,
            status=OutboxStatus.pending,
            attempts=0,
            next_attempt_at=func.now(),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(col(OutboxMessage.id))
    )
    outbox_id = (await session.execute(statement)).scalar_one_or_none()
    if outbox_id is not None:
        dispatch_after_commit(session, outbox_id)
    return outbox_id


def dispatch_after_commit(session: AsyncSession, outbox_id: uuid.UUID) -> None:
    ids: list[uuid.UUID] = session.info.setdefault(_PENDING_IDS_INFO_KEY, [])
    ids.append(outbox_id)
    dispatcher: Dispatcher | None = session.info.get(DISPATCHER_INFO_KEY)
    if dispatcher is not None:
        after_commit(session, "outbox.dispatch", functools.partial(dispatcher.dispatch, ids))
