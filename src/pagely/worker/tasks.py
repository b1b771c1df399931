"""The Celery tasks: thin adapters from a message to a platform or feature function, run on
the worker's event loop. They take ids only (no addresses, no tokens in the broker) and read
everything else from the database."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from celery import Task, shared_task

from pagely.core.idempotency import prune_expired
from pagely.core.outbox.delivery import claim_stale, deliver
from pagely.core.outbox.dispatch import SEND_TASK
from pagely.worker import metrics as _metrics  # noqa: F401 - connects the task timers
from pagely.worker.celery import PRUNE_IDEMPOTENCY_TASK, SWEEP_TASK
from pagely.worker.runtime import task_runtime

# Each task logs under its feature's logger, as the API does.
outbox_log = structlog.get_logger("pagely.outbox")
catalog_log = structlog.get_logger("pagely.catalog")


@shared_task(bind=True, name=SEND_TASK, max_retries=None)
def send(self: Task[Any, Any], outbox_id: str) -> str:
    runtime = task_runtime(self)
    resources = runtime.resources
    outcome = runtime.run(
        deliver(resources.sessionmaker, resources.settings, resources.redis, uuid.UUID(outbox_id))
    )
    if outcome.retry_in is not None:
        # The row already records the attempt and when the next is due; should this retry
        # message be lost, the sweep re-dispatches the row.
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(bind=True, name=SWEEP_TASK)
def sweep(self: Task[Any, Any]) -> int:
    runtime = task_runtime(self)
    resources = runtime.resources
    ids = runtime.run(claim_stale(resources.sessionmaker, resources.settings))
    if not ids:
        return 0
    published = resources.dispatcher.publish(ids)
    outbox_log.info("outbox_swept", redispatched=published, found=len(ids))
    return published


@shared_task(bind=True, name=PRUNE_IDEMPOTENCY_TASK)
def prune_idempotency_keys(self: Task[Any, Any]) -> int:
    runtime = task_runtime(self)
    hours = runtime.resources.settings.idempotency_key_hours
    pruned = runtime.run(prune_expired(runtime.resources.sessionmaker, hours))
    if pruned:
        catalog_log.info("idempotency_keys_pruned", count=pruned)
    return pruned
