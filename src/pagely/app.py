"""The application factory: middleware, routers, error handlers and the lifespan that owns
every process-wide resource."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from pagely import __version__
from pagely.admin.metrics_router import router as metrics_router
from pagely.admin.router import router as outbox_router
from pagely.catalog.books.fastpath import BookReadFastPath
from pagely.catalog.books.router import router as books_router
from pagely.catalog.books.search import has_trigram
from pagely.catalog.reviews.router import router as reviews_router
from pagely.catalog.tags.router import router as tags_router
from pagely.core.errorreporting import configure_error_reporting
from pagely.core.errors import install_error_handlers
from pagely.core.logging import configure_logging
from pagely.core.middleware import EdgeMiddleware
from pagely.core.telemetry import TracedRequests, configure_tracing, instrument_celery
from pagely.core.templating import STATIC_DIR
from pagely.health.router import router as health_router
from pagely.identity.roles_router import router as roles_router
from pagely.identity.router import router as auth_router
from pagely.identity.users_router import router as users_router
from pagely.notifications.router import router as notifications_router
from pagely.settings import Settings, get_settings
from pagely.web.docs import install_docs
from pagely.web.openapi import build_openapi
from pagely.web.router import router as pages_router
from pagely.worker.celery import create_resources


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    tracing = configure_tracing("pagely-api")
    if tracing:
        instrument_celery()  # the publish of an outbox message, a span in the request's trace
    configure_error_reporting(settings, "api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = create_resources(settings)
        thresholds = gc.get_threshold()
        try:
            await resources.wait_until_reachable()
            resources.trigram = await has_trigram(resources.engine)
            app.state.resources = resources
            # What exists now lives as long as the process (modules, models, routes, pools):
            # kept out of the collector's sight, a full collection under load stops walking
            # it, which was the p99 of cheap requests (see docs/performance.md).
            gc.collect()
            gc.freeze()
            gc.set_threshold(settings.gc_threshold, *thresholds[1:])
            sampler = asyncio.create_task(resources.sample_pools_forever())
            yield
            sampler.cancel()
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            await resources.close()

    app = FastAPI(
        title=settings.app_name,
        version=__version__,
        summary="Bookstore backend: accounts, catalog, reviews, notifications.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry layer stays off: it would run outside the edge (a span
        # for every refused request), record request bodies for processors, see the tokens in
        # paths, and double the server spans of core/telemetry.py (whose cost is measured).
        telemetry={
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        },
    )
    install_docs(app)
    app.state.settings = settings

    install_error_handlers(app)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]

    # Included straight into the app (not through a prefix router): routing walks one level
    # less per request. The hottest routes (books) are matched first.
    for router in (
        books_router,
        tags_router,
        reviews_router,
        auth_router,
        notifications_router,
        users_router,
        roles_router,
        outbox_router,
    ):
        app.include_router(router, prefix=settings.api_prefix)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(pages_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if settings.environment == "development" and settings.dev_mail_dir:
        from pagely.devmail.router import router as devmail_router

        app.include_router(devmail_router)

    # Added innermost first: the last one added runs first. CORS is outermost so that every
    # response, the generic 500 included, carries its headers to a browser client.
    if settings.catalog_fast_path:
        app.add_middleware(BookReadFastPath, prefix=settings.api_prefix)
    if tracing:  # inside the edge: a refused request costs no span
        app.add_middleware(TracedRequests)
    app.add_middleware(
        EdgeMiddleware,
        allowed_hosts=settings.allowed_hosts,
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_header_count=settings.max_header_count,
        https=settings.public_base_url.startswith("https://"),
        max_in_flight=settings.max_in_flight,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials="*" not in settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match",
                           "Idempotency-Key", "X-Request-ID"],
            expose_headers=["ETag", "Location", "Idempotent-Replayed", "X-Request-ID",
                            "X-Process-Time", "Retry-After"],
        )  # fmt: skip
    return app
