"""Writing an email to the outbox, in the caller's transaction, with its dispatch after commit."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pagely.core import telemetry
from pagely.core.db import after_commit
from pagely.core.mail.render import check_template
from pagely.core.outbox import queries
from pagely.core.outbox.dispatch import DISPATCHER_INFO_KEY, Dispatcher

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
    payload = {"template": template, "to": to, "context": context}
    outbox_id = await queries.insert_pending(
        session, kind=EMAIL, payload=payload, key=key, trace_context=telemetry.carrier()
    )
    if outbox_id is not None:
        dispatch_after_commit(session, outbox_id)
    return outbox_id


def dispatch_after_commit(session: AsyncSession, outbox_id: uuid.UUID) -> None:
    """Publish `outbox_id` once the session commits, in one batch with every other id of the
    transaction. A session without a dispatcher (a script's) leaves the row to the sweep."""
    ids: list[uuid.UUID] = session.info.setdefault(_PENDING_IDS_INFO_KEY, [])
    ids.append(outbox_id)
    dispatcher: Dispatcher | None = session.info.get(DISPATCHER_INFO_KEY)
    if dispatcher is not None:
        after_commit(session, "outbox.dispatch", functools.partial(dispatcher.dispatch, ids))
