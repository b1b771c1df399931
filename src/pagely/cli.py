"""The `pagely` command."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, TypedDict

import typer

from pagely.core.db import run_in_transaction, transaction
from pagely.settings import ConfigError, Settings, get_settings, load_settings
from pagely.worker.celery import create_resources

cli = typer.Typer(help="Pagely bookstore backend.", no_args_is_help=True, add_completion=False)


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"pagely: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise fail(str(exc)) from None


@contextlib.contextmanager
def services(*, smtp: bool = True, require_owner: bool = False) -> Iterator[Settings]:
    """Settings whose services are reachable. In development and tests, what the settings
    (environment and .env) leave unset comes from the embedded stack, attached to when
    `make run` is up, and a missing JWT_SECRET from the checkout's development key
    (`.pagely/jwt-secret`). Configuration errors end the command with one line."""
    settings = settings_or_exit()
    try:
        if not settings.is_dev_or_test:
            yield settings
            return
        from pagely.devtools.devkey import dev_jwt_secret
        from pagely.devtools.embedded import embedded_services
        from pagely.devtools.processes import DevStackError

        try:
            if not (settings.jwt_secret and settings.jwt_secret.get_secret_value()):
                # The checkout's own key; exported, so every child process signs alike.
                os.environ["JWT_SECRET"] = dev_jwt_secret()
            with embedded_services(
                postgres=not settings.database_url,
                redis=not settings.redis_url,
                smtp=smtp and not settings.smtp_host,
                require_owner=require_owner,
            ) as extra:
                os.environ.update(extra)
                get_settings.cache_clear()
                yield settings_or_exit()
        except DevStackError as exc:
            raise fail(str(exc)) from None
    except ConfigError as exc:
        raise fail(str(exc)) from None


def development_only(settings: Settings, command: str) -> None:
    if not settings.is_dev_or_test:
        raise fail(
            f"`pagely {command}` loads demo data and is for development only "
            f"(ENVIRONMENT is {settings.environment})"
        )


@cli.command()
def migrate() -> None:
    """Apply database migrations up to the latest."""
    from pagely.core import migrations

    with services(smtp=False) as settings:
        migrations.upgrade(settings.require("database_url"))
        typer.echo("migrations applied")


@cli.command("check-migrations")
def check_migrations() -> None:
    """Fail when the models and the migrations disagree (runs on a scratch database)."""
    from pagely.devtools import dbadmin

    with services(smtp=False) as settings:
        try:
            dbadmin.check_on_scratch_database(settings.require("database_url"))
        except dbadmin.DriftError as exc:
            raise fail(str(exc), 1) from None
        typer.echo("migrations match the models")


@cli.command()
def seed() -> None:
    """Load the demo admin and the demo catalog (idempotent)."""
    from pagely.devtools.seed import seed_demo

    with services(smtp=False) as settings:
        development_only(settings, "seed")
        password = settings.demo_admin_password.get_secret_value()
        added = asyncio.run(
            run_in_transaction(
                settings, lambda s: seed_demo(s, settings.demo_admin_email, password)
            )
        )
        typer.echo(f"demo data ready: admin {settings.demo_admin_email}, {added} new books")


@cli.command("openapi")
def openapi(
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Print the OpenAPI document (what `make openapi` commits as openapi.json)."""
    import json

    from pagely.app import create_app

    # The document does not depend on secrets or services: development settings, no .env.
    settings = load_settings(_env_file=None, environment="development")
    document = json.dumps(create_app(settings).openapi(), indent=2) + "\n"
    if output is None:
        typer.echo(document, nl=False)
    else:
        output.write_text(document)


@cli.command("import-books")
def import_books(
    file: Annotated[Path, typer.Argument(help="A UTF-8 CSV file with a header row.")],
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Rows per statement and per transaction.")
    ] = 1000,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the file and report bad rows; write nothing.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Import or update books from a CSV file (idempotent: books are matched by ISBN, or by
    title and authors when there is none). Bad rows are reported by line and skipped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from pagely.catalog.importing.errors import UnreadableCatalog
    from pagely.catalog.importing.parse import open_catalog
    from pagely.catalog.importing.service import check_catalog, run_import, summary_lines

    try:
        catalog = open_catalog(file)
    except UnreadableCatalog as exc:
        raise fail(str(exc)) from None
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        "lines",
        TimeRemainingColumn(),
        disable=quiet or not sys.stdout.isatty(),
        transient=True,
    )
    task = progress.add_task(f"importing {file.name}", total=catalog.lines)

    def advance(line: int) -> None:
        progress.update(task, completed=line)

    try:
        with progress:
            if dry_run:
                report = check_catalog(catalog.rows, on_progress=advance)
            else:
                with services(smtp=False) as settings:
                    report = asyncio.run(
                        run_import(settings, catalog, batch_size=batch_size, on_progress=advance)
                    )
    except UnreadableCatalog as exc:
        raise fail(f"{exc} (the rows before it were processed)") from None
    for line in summary_lines(report, catalog.columns, dry_run=dry_run):
        typer.echo(line)


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Repeat password: "):
            raise fail("passwords do not match")
        return first
    return sys.stdin.readline().rstrip("\n")


@cli.command("create-admin")
def create_admin(
    email: Annotated[
        str, typer.Argument(help="The admin's email; an existing account is promoted.")
    ],
    name: Annotated[str, typer.Option(help="Display name for a new account.")] = "Admin",
) -> None:
    """Create an admin account, or promote an existing one. The password is read from the
    terminal (or stdin when piped), never from the command line."""
    from pagely.devtools.seed import ensure_admin
    from pagely.identity.password_policy import MAX_LENGTH, MIN_LENGTH
    from pagely.identity.service import normalise_email

    password = _read_password()
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise fail(f"the password must be {MIN_LENGTH} to {MAX_LENGTH} characters")
    with services(smtp=False) as settings:
        asyncio.run(run_in_transaction(settings, lambda s: ensure_admin(s, email, password, name)))
        typer.echo(f"{normalise_email(email)} is an admin")


class ProxyOptions(TypedDict):
    proxy_headers: bool
    forwarded_allow_ips: str


def proxy_options(settings: Settings) -> ProxyOptions:
    """uvicorn's forwarded-header handling, governed by TRUSTED_PROXIES like the app's own
    (core/clientip.py): off when no proxy is trusted (uvicorn would otherwise believe
    X-Forwarded-For from 127.0.0.1), else only from the listed addresses and networks."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(settings.trusted_proxies)}


@contextlib.contextmanager
def _metrics_shared(shared: bool) -> Iterator[None]:
    """For a command whose processes all record metrics: one directory they add up through
    (PROMETHEUS_MULTIPROC_DIR, else a new one, removed after). A directory set in the
    environment is prepared (created, emptied) even for one process."""
    from pagely.core import metrics

    chosen = os.environ.get(metrics.MULTIPROC_VARIABLE)
    if not shared and not chosen:
        yield
        return
    directory = metrics.multiprocess_directory(chosen)
    try:
        yield
    finally:
        if chosen is None:
            metrics.remove_directory(directory)


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the API with uvicorn (production settings: no reload, uvloop, httptools)."""
    import uvicorn

    with services() as settings, _metrics_shared(workers > 1):
        # Fail here with one line rather than a traceback from inside uvicorn's lifespan.
        asyncio.run(create_resources(settings).check_reachable())
        uvicorn.run(
            "pagely.app:create_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=10,
            timeout_keep_alive=settings.keep_alive_seconds,
            **proxy_options(settings),
        )


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Concurrent tasks in this worker.")] = 2,
    queues: Annotated[
        str | None, typer.Option(help="Comma-separated queues (default: CELERY_QUEUE).")
    ] = None,
    beat: Annotated[
        bool, typer.Option(help="Also run the periodic scheduler in this process (one only).")
    ] = False,
    events: Annotated[
        bool, typer.Option(help="Send task events, for Flower or `celery events`.")
    ] = False,
) -> None:
    """Run a Celery worker (email delivery, the outbox sweep)."""
    from prometheus_client import start_http_server

    from pagely.core.errorreporting import configure_error_reporting
    from pagely.core.logging import configure_logging
    from pagely.core.metrics import worker_registry
    from pagely.core.telemetry import configure_tracing, instrument_celery
    from pagely.worker.celery import create_celery_app

    with contextlib.ExitStack() as stack:
        settings = stack.enter_context(services())
        if not settings.is_dev_or_test:
            settings.require("smtp_host")
        configure_logging(settings.log_level, json=settings.log_json)
        if configure_tracing("pagely-worker"):
            instrument_celery()
        configure_error_reporting(settings, "worker")
        if settings.worker_metrics_port:
            stack.enter_context(_metrics_shared(True))
            start_http_server(settings.worker_metrics_port, settings.worker_metrics_host,
                              registry=worker_registry())  # fmt: skip
        argv = [
            "worker",
            f"--concurrency={concurrency}",
            f"--queues={queues or settings.celery_queue}",
            f"--loglevel={settings.log_level}",
            "--hostname=pagely@%h",
            "--without-mingle",
            "--without-gossip",
        ]
        if beat:
            argv.append("--beat")
        if events:
            argv.append("--task-events")
        create_celery_app(settings).worker_main(argv)


@cli.command("beat")
def beat_command() -> None:
    """Run the periodic scheduler (the outbox sweep). Run exactly one per deployment."""
    from pagely.core.logging import configure_logging
    from pagely.core.telemetry import configure_tracing, instrument_celery
    from pagely.worker.celery import create_celery_app

    with services(smtp=False) as settings:
        configure_logging(settings.log_level, json=settings.log_json)
        if configure_tracing("pagely-beat"):
            instrument_celery()
        create_celery_app(settings).start(["beat", f"--loglevel={settings.log_level}"])


@cli.command("send-test-email")
def send_test_email(
    to: Annotated[str, typer.Argument(help="Recipient address.")],
) -> None:
    """Send a test message through the outbox, a worker and SMTP: checks the mail set-up."""
    import uuid

    from email_validator import EmailNotValidError, validate_email

    from pagely.core.outbox import enqueue_email

    async def enqueue(settings: Settings) -> uuid.UUID | None:
        resources = create_resources(settings)
        try:
            async with transaction(resources.sessionmaker) as session:
                return await enqueue_email(
                    session,
                    template="test_email",
                    to=to,
                    context={},
                    key=f"test_email:{uuid.uuid4()}",
                )
        finally:
            await resources.close()

    try:
        to = validate_email(to, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise fail(f"not an email address: {exc}") from None
    with services(smtp=False) as settings:
        outbox_id = asyncio.run(enqueue(settings))
        typer.echo(f"queued test email {outbox_id} to {to}")


@cli.command()
def run() -> None:
    """Everything for local development: embedded services where none are configured,
    migrations, demo data, a worker and the API. Ctrl-C stops it all."""
    from pagely.devtools.supervisor import run_all

    development_only(settings_or_exit(), "run")
    with services(require_owner=True) as settings:
        raise typer.Exit(run_all(settings))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
