"""The Celery application factory, called by the processes that need an app (the worker);
nothing builds one at import time."""

from __future__ import annotations

from celery import Celery

from pagely.settings import Settings

# Feature modules whose tasks.py the worker imports.
TASK_MODULES: list[str] = []


def create_celery_app(settings: Settings) -> Celery:
    broker = settings.broker_url
    if not broker:
        settings.require("redis_url")  # raises the one-line ConfigError
    app = Celery("pagely", broker=broker, include=TASK_MODULES)
    app.conf.update(
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        timezone="UTC",
        enable_utc=True,
    )
    return app
