"""Periodic catalog upkeep, run by the worker on beat's schedule."""

from __future__ import annotations

from typing import Any, cast

import structlog
from celery import Task, shared_task

from pagely.catalog.idempotency import prune_expired
from pagely.celery_app import PRUNE_IDEMPOTENCY_TASK, PagelyCelery
from pagely.worker_runtime import get_runtime

log = structlog.get_logger("pagely.catalog")


@shared_task(bind=True, name=PRUNE_IDEMPOTENCY_TASK)
def prune_idempotency_keys(self: Task[Any, Any]) -> int:
    settings = cast(PagelyCelery, self.app).settings
    runtime = get_runtime(settings)
    pruned = runtime.run(
        prune_expired(runtime.resources.sessionmaker, settings.idempotency_key_hours)
    )
    if pruned:
        log.info("idempotency_keys_pruned", count=pruned)
    return pruned
