"""Periodic catalog upkeep, run by the worker on beat's schedule."""

from __future__ import annotations

from typing import Any

import structlog
from celery import Task, shared_task

from pagely.catalog.idempotency import prune_expired
from pagely.celery_app import PRUNE_IDEMPOTENCY_TASK
from pagely.worker_runtime import task_runtime

log = structlog.get_logger("pagely.catalog")


@shared_task(bind=True, name=PRUNE_IDEMPOTENCY_TASK)
def prune_idempotency_keys(self: Task[Any, Any]) -> int:
    runtime = task_runtime(self)
    hours = runtime.resources.settings.idempotency_key_hours
    pruned = runtime.run(prune_expired(runtime.resources.sessionmaker, hours))
    if pruned:
        log.info("idempotency_keys_pruned", count=pruned)
    return pruned
