"""Writing parsed rows, a batch at a time, in a few set-based statements whatever the batch
size: the rows are staged in a temporary table, then rows with an ISBN are upserted on isbn13
and rows without one are matched on (lower(title), authors) against books without an ISBN. A
re-import therefore never duplicates a book, and a book it would not change is not touched."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Table,
    Uuid,
    and_,
    bindparam,
    column,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, Insert, distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateTable, DropTable

from pagely.catalog.books.queries import CATALOG_FIELDS
from pagely.catalog.books.search import add_search_words
from pagely.catalog.importing.parse import BookRow, ColumnMap
from pagely.catalog.tags.queries import set_tags
from pagely.models import Book
from pagely.models.base import table

# The fields an import writes, in order: a book's descriptive fields, and its popularity.
IMPORTED_FIELDS: tuple[str, ...] = (*CATALOG_FIELDS, "popularity")

_BOOKS = table(Book)
_STAGING = Table(
    "import_rows",
    MetaData(),
    Column("line", Integer, primary_key=True),
    Column("id", Uuid, nullable=False),
    *(Column(name, _BOOKS.c[name].type) for name in IMPORTED_FIELDS),
    Column("existing_id", Uuid),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
_STAGED = [c.name for c in _STAGING.c if c.name != "existing_id"]
_INSERTED = ["id", *IMPORTED_FIELDS]
# Serialises concurrent imports batch by batch, so two of them cannot both insert the same
# book without an ISBN (nothing unique in the table would stop them).
_IMPORT_LOCK = select(func.pg_advisory_xact_lock(func.hashtext("pagely.import_books")))


@dataclass(frozen=True, slots=True)
class WrittenBatch:
    """What a batch changed; its other rows matched books they would leave as they are."""

    inserted: int
    updated: int


def _updated_fields(columns: ColumnMap) -> list[str]:
    """A column the file has sets its field (a blank cell clears it); one it lacks leaves the
    field of an existing book alone. isbn13 is never among them: it is what a book is matched
    on."""
    present = {
        "title": True,
        "authors": True,
        "subtitle": columns.has("subtitle"),
        "isbn10": columns.has_any("isbn13", "isbn10", "isbn"),
        "publisher": columns.has("publisher"),
        "published_date": columns.has_any("published_date", "publication_year"),
        "page_count": columns.has("page_count"),
        "language": columns.has("language"),
        "description": columns.has("description"),
        "tags": columns.has("tags"),
        "popularity": columns.has("popularity"),
    }
    return [name for name in IMPORTED_FIELDS if present.get(name)]


def _staged_record(row: BookRow, book_id: uuid.UUID) -> dict[str, Any]:
    """A row as jsonb_to_recordset reads it, so the id and the date as text. Every imported
    field is a BookRow attribute of the same name: a new one must be parsed to be written."""
    record = {name: getattr(row, name) for name in IMPORTED_FIELDS}
    record["line"] = row.line
    record["id"] = str(book_id)
    if row.published_date:
        record["published_date"] = row.published_date.isoformat()
    return record


async def write_batch(
    session: AsyncSession, rows: Sequence[BookRow], columns: ColumnMap
) -> WrittenBatch:
    """Upsert these rows (already free of in-file duplicates) in a few set-based statements.
    Flushes, never commits. Books that changed get their tags and search words."""
    await session.execute(_IMPORT_LOCK)
    await session.execute(CreateTable(_STAGING))
    batch = _Batch(rows, _updated_fields(columns))
    records = func.jsonb_to_recordset(
        bindparam("rows", [_staged_record(row, batch.ids[row.line]) for row in rows], type_=JSONB)
    ).table_valued(*(column(name, _STAGING.c[name].type) for name in _STAGED))
    source = records.render_derived(name="r", with_types=True)
    await session.execute(
        insert(_STAGING).from_select(_STAGED, select(*(source.c[name] for name in _STAGED)))
    )
    if any(row.isbn13 for row in rows):
        await batch.upsert_rows_with_isbn(session)
    if any(row.isbn13 is None for row in rows):
        await batch.write_rows_without_isbn(session)
    await session.execute(DropTable(_STAGING))
    if columns.has("tags"):
        await set_tags(session, {book_id: row.tags for book_id, row in batch.changed.items()})
    await add_search_words(session, list(batch.changed))
    return WrittenBatch(inserted=batch.inserted, updated=batch.updated)


class _Batch:
    """One batch's rows, the ids new books get, and what the statements changed."""

    def __init__(self, rows: Sequence[BookRow], fields: list[str]) -> None:
        self.by_line = {row.line: row for row in rows}
        self.ids = {row.line: uuid.uuid4() for row in rows}
        self.line_of_new_id = {book_id: line for line, book_id in self.ids.items()}
        self.fields = fields
        self.changed: dict[uuid.UUID, BookRow] = {}
        self.inserted = 0
        self.updated = 0

    def _record(self, book_id: uuid.UUID, line: int) -> None:
        self.changed[book_id] = self.by_line[line]
        if book_id == self.ids[line]:
            self.inserted += 1
        else:
            self.updated += 1

    @staticmethod
    def _insert_from_staging(*where: Any) -> Insert:
        return pg_insert(_BOOKS).from_select(
            _INSERTED, select(*(_STAGING.c[name] for name in _INSERTED)).where(*where)
        )

    async def upsert_rows_with_isbn(self, session: AsyncSession) -> None:
        """One upsert on isbn13; a book the row would not change is not touched."""
        upsert = self._insert_from_staging(_STAGING.c.isbn13.is_not(None))
        upsert = upsert.on_conflict_do_update(
            index_elements=[_BOOKS.c.isbn13],
            set_={
                **{name: upsert.excluded[name] for name in self.fields},
                "version": _BOOKS.c.version + 1,
                "updated_at": func.now(),
            },
            where=or_(
                *(_BOOKS.c[name].is_distinct_from(upsert.excluded[name]) for name in self.fields)
            ),
        )
        line_of_isbn = {row.isbn13: row.line for row in self.by_line.values() if row.isbn13}
        returned = await session.execute(upsert.returning(_BOOKS.c.id, _BOOKS.c.isbn13))
        for book_id, isbn13 in returned:
            self._record(book_id, line_of_isbn[isbn13])

    async def write_rows_without_isbn(self, session: AsyncSession) -> None:
        """The same book is the oldest one without an ISBN that has the same title (ignoring
        case) and the same authors in the same order: update it, or insert a new one."""
        staged, books = _STAGING.c, _BOOKS.c
        match = (
            select(staged.line, books.id)
            .join(
                _BOOKS,
                and_(
                    books.isbn13.is_(None),
                    func.lower(books.title) == func.lower(staged.title),
                    books.authors == staged.authors,
                ),
            )
            .where(staged.isbn13.is_(None))
            .order_by(staged.line, books.created_at, books.id)
            .ext(distinct_on(staged.line))
            .subquery()
        )
        await session.execute(
            update(_STAGING).where(staged.line == match.c.line).values(existing_id=match.c.id)
        )
        fields = [name for name in self.fields if name != "isbn10"]
        updated = await session.execute(
            update(_BOOKS)
            .where(
                books.id == staged.existing_id,
                or_(*(books[name].is_distinct_from(staged[name]) for name in fields)),
            )
            .values(
                {name: staged[name] for name in fields}
                | {"version": books.version + 1, "updated_at": func.now()}
            )
            .returning(books.id, staged.line)
        )
        for book_id, line in updated:
            self._record(book_id, line)
        inserted = await session.execute(
            self._insert_from_staging(
                staged.isbn13.is_(None), staged.existing_id.is_(None)
            ).returning(books.id)
        )
        for (book_id,) in inserted:
            self._record(book_id, self.line_of_new_id[book_id])
