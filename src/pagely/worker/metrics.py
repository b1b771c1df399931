"""Task run times for the worker's metrics (`pagely_task_duration_seconds`), from Celery's
signals in the process that runs the task (a pool process: it writes to the shared metrics
directory, and the worker's main process serves the sum)."""

from __future__ import annotations

import time
from typing import Any

from celery.signals import task_postrun, task_prerun

from pagely.core.metrics import TASK_DURATION

_started: dict[str, float] = {}


@task_prerun.connect
def _task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id is not None:
        _started[task_id] = time.perf_counter()


@task_postrun.connect
def _task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    started = _started.pop(task_id or "", None)
    if started is not None and task is not None:
        outcome = (state or "unknown").lower()  # success, retry, failure
        TASK_DURATION.labels(task.name, outcome).observe(time.perf_counter() - started)
