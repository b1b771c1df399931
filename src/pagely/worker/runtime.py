"""What a Celery worker process needs to run async code: one event loop, started once per
process on a background thread, with the engine and Redis client bound to it.

Tasks are synchronous functions that hand a coroutine to `run()` and wait. No task ever
creates or closes a loop, so pooled connections live as long as the process and nothing
deadlocks on a loop another task owns. The runtime is built lazily in the process that runs
tasks (after the prefork pool forked), never inherited across a fork.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar, cast

from celery import Task
from celery.signals import worker_process_shutdown

from pagely.core.telemetry import flush_tracing
from pagely.settings import Settings
from pagely.worker.celery import PagelyCelery, create_resources

T = TypeVar("T")


class WorkerRuntime:
    def __init__(self, settings: Settings) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="pagely-async", daemon=True
        )
        self._thread.start()
        self.resources = create_resources(settings)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        try:
            self.run(self.resources.close(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)


_lock = threading.Lock()
_runtime: WorkerRuntime | None = None


def get_runtime(settings: Settings) -> WorkerRuntime:
    global _runtime
    with _lock:
        if _runtime is None or _runtime.pid != os.getpid():
            _runtime = WorkerRuntime(settings)
        return _runtime


def task_runtime(task: Task[Any, Any]) -> WorkerRuntime:
    """The runtime for a bound task, built from the settings its Celery app carries."""
    return get_runtime(cast(PagelyCelery, task.app).settings)


@worker_process_shutdown.connect
def _close_runtime(**_: Any) -> None:
    global _runtime
    with _lock:
        if _runtime is not None and _runtime.pid == os.getpid():
            _runtime.close()
        _runtime = None
    flush_tracing()
