"""Prometheus metrics, and the delivery counters kept in Redis.

The Prometheus metrics live in the process that records them. With several processes (API
workers under one `pagely serve`, a worker's pool) `prometheus_client` runs in multiprocess
mode: `PROMETHEUS_MULTIPROC_DIR` names a directory every process of the group writes to,
set before this module is imported (`pagely serve` and `pagely worker` do it,
`multiprocess_directory`), and a scrape adds them up (`exposition`).

The delivery counters (emails sent, retried, failed) are kept in one Redis hash as well, so
the admin API and every API process's `/metrics` show the totals whichever worker did the
work."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import Metric
from prometheus_client.registry import REGISTRY, Collector
from redis.asyncio import Redis

log = structlog.get_logger("pagely.metrics")

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
if os.environ.get(MULTIPROC_VARIABLE):  # the metrics below write there from their creation
    os.makedirs(os.environ[MULTIPROC_VARIABLE], exist_ok=True)

# --- HTTP (core.middleware.EdgeMiddleware) ------------------------------------------------

HTTP_REQUESTS = Counter(
    "pagely_http_requests",
    "HTTP requests answered, by route template (never the raw path), method and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "pagely_http_request_duration_seconds",
    "Time from a request's arrival to its last byte, by route template and method.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUESTS_SHED = Counter(
    "pagely_requests_shed", "Requests refused by admission control (503 overloaded)."
)
UNMATCHED_ROUTE = "unmatched"  # the route label of a request no route took (a 404)

# --- pools (sampled by the API process, core.resources) --------------------------------

DB_POOL_IN_USE = Gauge(
    "pagely_db_pool_in_use", "PostgreSQL connections checked out.", multiprocess_mode="livesum"
)
DB_POOL_WAITING = Gauge(
    "pagely_db_pool_waiting",
    "Requests waiting for a PostgreSQL connection.",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "pagely_db_pool_size", "PostgreSQL connections a pool may hold.", multiprocess_mode="livesum"
)
REDIS_POOL_IN_USE = Gauge(
    "pagely_redis_pool_in_use", "Redis connections checked out.", multiprocess_mode="livesum"
)

# --- dependencies and security ----------------------------------------------------------

REDIS_ERRORS = Counter(
    "pagely_redis_errors",
    "Redis commands that failed, by what they were for (denylist, cache, rate_limit).",
    ["use"],
)
SIGNIN_FAILURES = Counter("pagely_signin_failures", "Sign-ins refused for wrong credentials.")
RATE_LIMITED = Counter(
    "pagely_rate_limited", "Requests refused by a rate limit (429), by limit.", ["limit"]
)

# --- the worker (pagely.worker) -------------------------------------------------------

TASK_DURATION = Histogram(
    "pagely_task_duration_seconds",
    "Celery task run time in the worker, by task and outcome.",
    ["task", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)


def redis_error(use: str) -> None:
    REDIS_ERRORS.labels(use).inc()


def multiprocess_directory(path: str | None = None) -> Path:
    """For a command that starts a group of processes: the directory they share (`path`, the
    configured PROMETHEUS_MULTIPROC_DIR, or a new one), emptied of an earlier run's files (this
    process's own, created when it imported this module, stay) and set in the environment,
    which the processes it starts inherit."""
    directory = Path(path or tempfile.mkdtemp(prefix="pagely-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # an earlier run's; this process's own stay
        if _pid_of(stale) != os.getpid():
            stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_VARIABLE] = str(directory)
    # This process imported the library already: what it records from now on (every labelled
    # series, created at first use, as in a worker's pool processes) goes to the directory.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return directory


def _pid_of(file: Path) -> int | None:
    """The process a multiprocess file belongs to: `counter_1234.db`, `gauge_livesum_1234.db`."""
    tail = file.stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _forget_dead_processes(directory: Path) -> None:
    """Live gauges (the pools) of processes that are gone (a worker restarted) must not stay
    in the sum; their counters and histograms do, as totals should."""
    for file in directory.glob("gauge_live*.db"):
        pid = _pid_of(file)
        if pid is not None and not _alive(pid):
            multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_directory(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_VARIABLE))


class _Fixed(Collector):
    """Families computed before the scrape (they need async I/O; collectors are sync)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def exposition(extra: Iterable[Metric] = ()) -> bytes:
    """The text exposition: every process of the group (multiprocess mode) or this one,
    plus `extra`, the families read at scrape time (the outbox, the dependencies)."""
    fixed = CollectorRegistry()
    fixed.register(_Fixed(extra))
    return generate_latest(worker_registry()) + generate_latest(fixed)


class _Processes(Collector):
    """Every process's files, read at each scrape after the live gauges of dead processes
    are dropped (a worker's pool replaces its children; uvicorn restarts a worker)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files = multiprocess.MultiProcessCollector(None, str(directory))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
        _forget_dead_processes(self.directory)
        yield from self.files.collect()  # type: ignore[no-untyped-call]


def worker_registry() -> CollectorRegistry:
    """The recorded metrics: every process of the group, summed (multiprocess mode), or
    this process's own. A worker's metrics server shows this, built once and read at every
    scrape."""
    if not multiprocess_mode():
        return REGISTRY
    registry = CollectorRegistry()
    registry.register(_Processes(Path(os.environ[MULTIPROC_VARIABLE])))
    return registry


# --- the delivery counters in Redis ---------------------------------------------------

COUNTERS_KEY = "pagely:metrics:counters"

OUTBOX_SENT = "outbox_sent_total"
OUTBOX_RETRIED = "outbox_retried_total"
OUTBOX_FAILED = "outbox_failed_total"


async def increment(redis: Redis, name: str, amount: int = 1) -> None:
    """Best effort: a metric is never worth failing the work it counts."""
    try:
        await redis.hincrby(COUNTERS_KEY, name, amount)
    except Exception as exc:
        log.warning("metric_not_recorded", metric=name, error=type(exc).__name__)


async def read_counters(redis: Redis) -> dict[str, int]:
    raw = await redis.hgetall(COUNTERS_KEY)  # the client decodes responses to str
    return {str(name): int(value) for name, value in raw.items()}
