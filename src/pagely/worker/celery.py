"""The Celery application factory. The API builds one to publish, the worker and beat to
consume and schedule; nothing builds one at import time."""

from __future__ import annotations

from celery import Celery

from pagely.core.resources import Resources
from pagely.settings import Settings

# The module whose tasks the worker imports.
TASK_MODULES: list[str] = ["pagely.worker.tasks"]

SWEEP_TASK = "pagely.outbox.sweep"
PRUNE_IDEMPOTENCY_TASK = "pagely.catalog.prune_idempotency_keys"


class PagelyCelery(Celery):
    """A Celery app that carries the settings it was built from, for tasks to use."""

    def __init__(self, settings: Settings) -> None:
        broker = settings.broker_url
        if not broker:
            settings.require("redis_url")  # raises the one-line ConfigError
        super().__init__("pagely", broker=broker, include=TASK_MODULES)
        self.settings = settings


def create_celery_app(settings: Settings, *, publisher: bool = False) -> PagelyCelery:
    """`publisher=True` for a process that only sends tasks (the API): a broker that accepts
    connections but never answers then times out instead of hanging the publishing thread,
    and RabbitMQ confirms every publish."""
    app = PagelyCelery(settings)
    interval = settings.outbox_sweep_interval_seconds
    timeout = settings.service_timeout_seconds
    transport_options: dict[str, object] = {
        # Redis: an unacknowledged task comes back after this; it must outlast the longest
        # retry delay (enforced by the settings).
        "visibility_timeout": settings.celery_visibility_timeout_seconds,
        "socket_connect_timeout": timeout,
    }
    if publisher:
        transport_options.update(
            # One quick reconnect, then give up: the sweep is the retry, and a request must
            # not wait for a broker that refuses connections.
            max_retries=1,
            interval_start=0,
            socket_timeout=timeout,  # redis
            read_timeout=timeout,  # amqp
            write_timeout=timeout,  # amqp
            confirm_publish=True,  # amqp: wait for the broker's ack of each message
        )
    app.conf.update(
        # No result backend: tasks report through the database (the outbox row).
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=settings.celery_queue,
        # A task is acknowledged after it ran, and re-delivered if its worker died.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # On SIGTERM, give the task in hand this long to finish before it is requeued.
        worker_soft_shutdown_timeout=10.0,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=timeout,
        broker_transport_options=transport_options,
        # In-memory schedule: interval jobs need no state file, so beat needs no writable disk.
        beat_scheduler="celery.beat:Scheduler",
        beat_schedule={
            "outbox-sweep": {
                "task": SWEEP_TASK,
                "schedule": interval,
                # A sweep that waited longer than an interval is superseded by the next one.
                "options": {"expires": max(interval, 1.0)},
            },
            "idempotency-key-prune": {
                "task": PRUNE_IDEMPOTENCY_TASK,
                "schedule": settings.idempotency_prune_interval_seconds,
                "options": {"expires": settings.idempotency_prune_interval_seconds},
            },
        },
        timezone="UTC",
        enable_utc=True,
    )
    return app


def create_resources(settings: Settings) -> Resources:
    """The platform resources of a process that publishes tasks (the API, the worker's own
    sweep, the CLI), with a publishing Celery app."""
    return Resources.create(settings, create_celery_app(settings, publisher=True))
