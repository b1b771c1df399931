"""Bulk catalog import from CSV (`pagely import-books`): the parsed rows of a file written a
batch at a time, each batch in its own transaction, so a crash loses at most the current
batch; and the report the command prints. Parsing is in `parse`, the statements in `queries`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pagely.catalog.importing.errors import UnreadableCatalog
from pagely.catalog.importing.parse import BadRow, BookRow, Catalog, ColumnMap
from pagely.catalog.importing.queries import write_batch
from pagely.core.db import create_engine, create_sessionmaker, transaction
from pagely.settings import Settings

DEFAULT_BATCH_SIZE = 1000


@dataclass
class ImportReport:
    """What an import (or a dry run) found in the file and did to the catalog."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    valid: int = 0
    bad: list[BadRow] = field(default_factory=list)
    undated: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def books_per_second(self) -> float:
        return self.valid / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[int], None]


async def import_catalog(
    sessionmaker: async_sessionmaker[AsyncSession],
    columns: ColumnMap,
    rows: Iterable[BookRow | BadRow],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: ProgressCallback | None = None,
) -> ImportReport:
    """Write the valid rows, one transaction per batch; collect the bad ones."""
    report = ImportReport()
    started = time.perf_counter()

    async def flush(batch: list[BookRow]) -> None:
        async with transaction(sessionmaker) as session:
            written = await write_batch(session, batch, columns)
        report.inserted += written.inserted
        report.updated += written.updated
        report.unchanged += len(batch) - written.inserted - written.updated
        if on_progress:
            on_progress(batch[-1].line)

    batch: list[BookRow] = []
    try:
        for row in _tally(rows, report):
            batch.append(row)
            if len(batch) >= batch_size:
                await flush(batch)
                batch = []
    except UnreadableCatalog:
        if batch:  # the rows before a broken record go in, as earlier batches did
            await flush(batch)
        raise
    if batch:
        await flush(batch)
    report.seconds = time.perf_counter() - started
    return report


async def run_import(
    settings: Settings,
    catalog: Catalog,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: ProgressCallback | None = None,
) -> ImportReport:
    """For the CLI: an engine of its own for the length of the import."""
    engine = create_engine(settings, long_statements=True)  # bulk statements may run long
    try:
        return await import_catalog(
            create_sessionmaker(engine),
            catalog.columns,
            catalog.rows,
            batch_size=batch_size,
            on_progress=on_progress,
        )
    finally:
        await engine.dispose()


def check_catalog(
    rows: Iterable[BookRow | BadRow], *, on_progress: ProgressCallback | None = None
) -> ImportReport:
    """Parse and validate only (`--dry-run`): nothing is written."""
    report = ImportReport()
    started = time.perf_counter()
    for row in _tally(rows, report):
        if on_progress and report.valid % DEFAULT_BATCH_SIZE == 0:
            on_progress(row.line)
    report.seconds = time.perf_counter() - started
    return report


def _tally(rows: Iterable[BookRow | BadRow], report: ImportReport) -> Iterator[BookRow]:
    """The valid rows, counted on the report as they pass; the bad ones kept on it."""
    for row in rows:
        if isinstance(row, BadRow):
            report.bad.append(row)
            continue
        report.valid += 1
        if row.undated:
            report.undated.append(row.line)
        yield row


def summary_lines(report: ImportReport, columns: ColumnMap, *, dry_run: bool = False) -> list[str]:
    """What `pagely import-books` prints once the file is processed."""
    lines = [f"line {bad.line}: {bad.reason}" for bad in report.bad]
    if columns.ignored:
        lines.append(f"ignored columns: {', '.join(columns.ignored)}")
    if report.undated:
        shown = ", ".join(str(line) for line in report.undated[:10])
        more = f" and {len(report.undated) - 10} more" if len(report.undated) > 10 else ""
        lines.append(
            f"{len(report.undated)} rows without a usable year (BCE, zero or too far ahead) "
            f"imported without a date: lines {shown}{more}"
        )
    bad = f"{len(report.bad)} bad row{'' if len(report.bad) == 1 else 's'}"
    if dry_run:
        lines.append(f"dry run: {report.valid} valid rows, {bad}")
    else:
        lines.append(
            f"{report.valid} books: {report.inserted} inserted, {report.updated} updated, "
            f"{report.unchanged} unchanged; {bad}"
        )
    lines.append(f"{report.seconds:.2f}s, {report.books_per_second:.0f} books/s")
    return lines
