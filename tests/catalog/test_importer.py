"""`pagely import-books`: CSV parsing (pure) and the set-based, idempotent import."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from pagely.catalog.importing.errors import UnreadableCatalog
from pagely.catalog.importing.parse import BadRow, BookRow, map_columns, read_catalog
from pagely.catalog.importing.service import ImportReport, import_catalog
from pagely.core.isbn import isbn13_check_digit
from pagely.core.resources import Resources
from pagely.models import Book
from pagely.settings import Settings

TODAY = date(2026, 6, 1)
GOODBOOKS_HEADER = (
    "id,title,original_title,authors,isbn10,isbn13,publication_year,language,"
    "average_rating,ratings_count"
)


def isbn13(n: int) -> str:
    first12 = f"978{n:09d}"
    return first12 + isbn13_check_digit(first12)


def parse(csv_text: str) -> tuple[list[BookRow], list[BadRow]]:
    catalog = read_catalog(io.StringIO(csv_text, newline=""), today=TODAY)
    rows = list(catalog.rows)
    return (
        [row for row in rows if isinstance(row, BookRow)],
        [row for row in rows if isinstance(row, BadRow)],
    )


def parse_one(header: str, row: str) -> BookRow:
    [book], bad = parse(f"{header}\n{row}\n")
    assert bad == []
    return book


def bad_reasons(csv_text: str) -> dict[int, str]:
    return {bad.line: bad.reason for bad in parse(csv_text)[1]}


async def run_import(resources: Resources, csv_text: str, batch_size: int = 1000) -> ImportReport:
    catalog = read_catalog(io.StringIO(csv_text, newline=""), today=TODAY)
    return await import_catalog(
        resources.sessionmaker, catalog.columns, catalog.rows, batch_size=batch_size
    )


async def books_by_title(resources: Resources) -> dict[str, Book]:
    async with resources.sessionmaker() as session:
        return {book.title: book for book in (await session.execute(select(Book))).scalars()}


async def count_books(resources: Resources) -> int:
    async with resources.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(Book))).scalar_one()


# --- Parsing ---------------------------------------------------------------------------------


def test_goodbooks_header_maps_every_known_column_and_names_the_ignored_ones() -> None:
    columns = map_columns(GOODBOOKS_HEADER.split(","))
    assert columns.ignored == ("id", "original_title", "average_rating")
    book = parse_one(
        GOODBOOKS_HEADER,
        '2,"Harry Potter and the Sorcerer\'s Stone (Harry Potter, #1)",Harry Potter,'
        "J.K. Rowling|Mary GrandPré,0439554934,9780439554930,1997,en-US,4.44,4602479",
    )
    assert book.title == "Harry Potter and the Sorcerer's Stone (Harry Potter, #1)"
    assert book.authors == ["J.K. Rowling", "Mary GrandPré"]
    assert (book.isbn13, book.isbn10) == ("9780439554930", "0439554934")
    assert book.published_date == date(1997, 1, 1)
    assert (book.language, book.popularity) == ("en", 4602479)


def test_column_names_ignore_case_spaces_and_hyphens_and_accept_aliases() -> None:
    book = parse_one(
        "Title,SUBTITLE,Author,ISBN,Published Date,Language-Code,Pages,Publisher,Description,Tags",
        "Dune,Book One,Frank Herbert,0-441-17271-7,1965-08-01,ENG,412,Chilton,Spice.,SF|Classic",
    )
    assert book.authors == ["Frank Herbert"]
    assert (book.isbn13, book.isbn10) == ("9780441172719", "0441172717")
    assert book.published_date == date(1965, 8, 1)
    assert (book.language, book.page_count, book.publisher) == ("en", 412, "Chilton")
    assert (book.subtitle, book.description, book.tags) == ("Book One", "Spice.", ["sf", "classic"])
    assert book.popularity == 0


def test_a_missing_required_column_makes_the_file_unreadable() -> None:
    with pytest.raises(UnreadableCatalog, match="authors or author"):
        read_catalog(io.StringIO("title,isbn13\nDune,9780441172719\n"))
    with pytest.raises(UnreadableCatalog, match="empty"):
        read_catalog(io.StringIO(""))


def test_bad_rows_are_reported_by_line_while_the_valid_rows_parse() -> None:
    csv_text = "\n".join(
        [
            GOODBOOKS_HEADER,
            f"1,Good One,,Ann Author,,{isbn13(1)},2001,en,4,10",
            '2,"A title over',  # a quoted field spanning two lines: the row starts on line 3
            ' two lines",,Ann Author,,,2001,en,4,10',
            "3,Bad Checksum,,Ann Author,,9780439023482,2001,en,4,10",
            "4,,,Ann Author,,,2001,en,4,10",
            "5,Bad Year,,Ann Author,,,20x1,en,4,10",
            "6,No Author,,,,,2001,en,4,10",
            f"7,Mismatch,,Ann Author,0439023483,{isbn13(2)},2001,en,4,10",
            "8,Klingon,,Ann Author,,,2001,tlh,4,10",
            f"9,Again,,Ann Author,,{isbn13(1)},2001,en,4,10",
            "10,Short Row,Ann Author",
            "11,Many Readers,,Ann Author,,,2001,en,4,lots",
            "",
            "12,Good Two,,Ann Author|Bo Writer,,,,,,",
        ]
    )
    books, _ = parse(csv_text)
    assert [(book.line, book.title) for book in books] == [
        (2, "Good One"),
        (3, "A title over\n two lines"),
        (15, "Good Two"),
    ]
    assert bad_reasons(csv_text) == {
        5: "isbn13: the ISBN-13 check digit is wrong",
        6: "title is missing",
        7: "publication_year: '20x1' is not a year",
        8: "authors is missing",
        9: f"isbn13 {isbn13(2)} and isbn10 0439023483 are not the same book",
        10: "language: 'tlh' is not an ISO 639 language code",
        11: f"same ISBN {isbn13(1)} as line 2",
        12: "has 3 fields, the header has 10",
        13: "ratings_count: 'lots' is not a whole number",
    }


def test_a_record_the_csv_reader_cannot_parse_ends_the_file_with_its_line() -> None:
    too_big = "x" * 200_000  # over the csv module's field size limit
    catalog = read_catalog(io.StringIO(f'title,authors\nA,B\n"{too_big}",C\n', newline=""))
    assert isinstance(next(catalog.rows), BookRow)
    with pytest.raises(UnreadableCatalog, match="line 3: field larger than field limit"):
        next(catalog.rows)


@pytest.mark.parametrize(
    ("year", "expected"),
    [
        ("2008", date(2008, 1, 1)),
        ("2008.0", date(2008, 1, 1)),
        ("397", date(397, 1, 1)),
        ("", None),
        ("-300", None),
        ("0", None),
        ("2999", None),
    ],
)
def test_a_year_becomes_the_first_of_january_and_an_unusable_year_no_date(
    year: str, expected: date | None
) -> None:
    book = parse_one("title,authors,publication_year", f"Old Book,Someone,{year}")
    assert book.published_date == expected
    assert book.undated == (expected is None and year != "")


def test_published_date_takes_a_full_date_a_month_or_a_year() -> None:
    header = "title,authors,published_date"
    assert parse_one(header, "A,B,2001-05-17").published_date == date(2001, 5, 17)
    assert parse_one(header, "A,B,2001-05").published_date == date(2001, 5, 1)
    assert parse_one(header, "A,B,2001").published_date == date(2001, 1, 1)
    assert bad_reasons(f"{header}\nA,B,17/05/2001\n") == {
        2: "published_date: '17/05/2001' is not a date (YYYY-MM-DD)"
    }


@pytest.mark.parametrize(
    ("raw", "code"),
    [("en", "en"), ("EN", "en"), ("en-GB", "en"), ("eng", "en"), ("fre", "fr"), ("ger", "de"),
     ("", "en"), ("mul", "en"), ("fil", "tl"), ("pt_BR", "pt"), ("ar", "ar")],
)  # fmt: skip
def test_language_becomes_an_iso_639_1_code(raw: str, code: str) -> None:
    assert parse_one("title,authors,language", f"A,B,{raw}").language == code


def test_tags_are_split_and_normalised() -> None:
    book = parse_one("title,authors,tags", "A,B,Science Fiction| science-fiction |Fantasy||")
    assert book.tags == ["science-fiction", "fantasy"]


# --- Writing ---------------------------------------------------------------------------------


async def test_import_writes_goodbooks_rows_as_books(db_cleaner: Resources) -> None:
    report = await run_import(
        db_cleaner,
        f"{GOODBOOKS_HEADER}\n"
        "1,The Hunger Games,The Hunger Games,Suzanne Collins,0439023483,9780439023481,"
        "2008,en,4.34,4780653\n"
        "2,The Republic,,Plato,,,-380,,3.9,20000\n",
    )
    assert (report.inserted, report.updated, report.unchanged, report.bad) == (2, 0, 0, [])
    assert report.undated == [3]
    books = await books_by_title(db_cleaner)
    hunger, republic = books["The Hunger Games"], books["The Republic"]
    assert (hunger.isbn13, hunger.isbn10) == ("9780439023481", "0439023483")
    assert (hunger.published_date, hunger.language) == (date(2008, 1, 1), "en")
    assert hunger.popularity == 4780653
    # Ratings counted elsewhere are a popularity signal, never our own review aggregates.
    assert (hunger.rating_count, float(hunger.rating_avg), hunger.owner_id) == (0, 0.0, None)
    assert (republic.isbn13, republic.published_date, republic.language) == (None, None, "en")
    assert hunger.search_vector is not None
    async with db_cleaner.sessionmaker() as session:
        words = set((await session.execute(text("SELECT word FROM search_words"))).scalars())
    assert {"hunger", "games", "suzanne", "collins", "republic", "plato"} <= words


async def test_valid_rows_go_in_when_other_rows_are_bad(db_cleaner: Resources) -> None:
    report = await run_import(
        db_cleaner,
        f"{GOODBOOKS_HEADER}\n"
        f"1,Good,,Ann,,{isbn13(1)},2001,en,4,10\n"
        "2,Bad,,Ann,,9780439023482,2001,en,4,10\n"
        "3,,,Ann,,,2001,en,4,10\n",
    )
    assert report.inserted == 1
    assert [(bad.line, bad.reason) for bad in report.bad] == [
        (3, "isbn13: the ISBN-13 check digit is wrong"),
        (4, "title is missing"),
    ]
    assert list(await books_by_title(db_cleaner)) == ["Good"]


async def test_reimport_updates_changed_books_only_and_never_duplicates(
    db_cleaner: Resources,
) -> None:
    first = "\n".join(
        [
            "title,authors,isbn13,publication_year,ratings_count",
            f"Same,Ann,{isbn13(1)},2001,10",
            f"Renamed,Ann,{isbn13(2)},2002,20",
            "No ISBN,Bo|Cy,,2003,30",
            "No ISBN Same,Bo,,2004,40",
        ]
    )
    second = "\n".join(
        [
            "title,authors,isbn13,publication_year,ratings_count",
            f"Same,Ann,{isbn13(1)},2001,10",
            f"Renamed Again,Ann,{isbn13(2)},2002,20",
            "no isbn,Bo|Cy,,2003,31",  # the same book: title matched ignoring case
            "No ISBN Same,Bo,,2004,40",
            "No ISBN,Cy|Bo,,2003,30",  # other authors (order counts): another book
        ]
    )
    # Batches of two: the matching must hold across batches, not only within one.
    report = await run_import(db_cleaner, first, batch_size=2)
    assert (report.inserted, report.updated, report.unchanged) == (4, 0, 0)
    before = await books_by_title(db_cleaner)

    report = await run_import(db_cleaner, second, batch_size=2)
    assert (report.inserted, report.updated, report.unchanged) == (1, 2, 2)
    after = await books_by_title(db_cleaner)
    assert await count_books(db_cleaner) == 5
    assert after["Same"].version == 1
    assert after["Same"].updated_at == before["Same"].updated_at
    assert after["Renamed Again"].id == before["Renamed"].id
    assert after["Renamed Again"].version == 2
    assert after["Renamed Again"].updated_at > before["Renamed"].updated_at
    assert after["no isbn"].id == before["No ISBN"].id
    assert (after["no isbn"].popularity, after["no isbn"].version) == (31, 2)
    assert after["No ISBN Same"].version == 1
    assert after["No ISBN"].authors == ["Cy", "Bo"]

    report = await run_import(db_cleaner, second)
    assert (report.inserted, report.updated, report.unchanged) == (0, 0, 5)
    assert await count_books(db_cleaner) == 5


async def test_columns_missing_from_a_later_file_leave_their_fields_alone(
    db_cleaner: Resources,
) -> None:
    await run_import(
        db_cleaner,
        "title,authors,isbn,description,language,publisher\n"
        f"Kept,Ann,{isbn13(1)},A long description.,fr,Lantern House\n",
    )
    report = await run_import(db_cleaner, f"title,authors,isbn\nKept,Ann,{isbn13(1)}\n")
    assert report.unchanged == 1
    book = (await books_by_title(db_cleaner))["Kept"]
    assert (book.description, book.language, book.publisher) == (
        "A long description.",
        "fr",
        "Lantern House",
    )


async def test_tags_are_written_to_the_book_and_to_book_tags(db_cleaner: Resources) -> None:
    async def book_tags() -> dict[str, list[str]]:
        async with db_cleaner.sessionmaker() as session:
            rows = await session.execute(
                text(
                    "SELECT b.title, t.slug FROM book_tags bt JOIN books b ON b.id = bt.book_id "
                    "JOIN tags t ON t.id = bt.tag_id ORDER BY b.title, bt.position"
                )
            )
            found: dict[str, list[str]] = {}
            for title, slug in rows:
                found.setdefault(title, []).append(slug)
            return found

    await run_import(
        db_cleaner,
        "title,authors,isbn13,tags\n"
        f"Dune,Frank Herbert,{isbn13(1)},Science Fiction|Classics\n"
        "Untagged,Someone,,\n",
    )
    assert await book_tags() == {"Dune": ["science-fiction", "classics"]}
    assert (await books_by_title(db_cleaner))["Dune"].tags == ["science-fiction", "classics"]

    report = await run_import(
        db_cleaner,
        f"title,authors,isbn13,tags\nDune,Frank Herbert,{isbn13(1)},Classics|Desert\n"
        "Untagged,Someone,,\n",
    )
    assert (report.updated, report.unchanged) == (1, 1)
    assert await book_tags() == {"Dune": ["classics", "desert"]}
    assert (await books_by_title(db_cleaner))["Dune"].tags == ["classics", "desert"]


async def test_import_throughput(
    db_cleaner: Resources, report_measurement: Callable[[str], None]
) -> None:
    header = "title,authors,isbn13,publication_year,language,ratings_count,tags,description"
    rows = [
        f"Generated Book {n},Author {n % 300}|Second Author {n % 7},{isbn13(n)},"
        f"{1950 + n % 70},en,{n},Fiction|Shelf {n % 20},Description of book {n}."
        if n % 10
        else f"Generated Book {n},Author {n % 300},,{1950 + n % 70},fr,{n},,"
        for n in range(1, 5001)
    ]
    report = await run_import(db_cleaner, "\n".join([header, *rows]))
    assert (report.inserted, report.bad) == (5000, [])
    assert await count_books(db_cleaner) == 5000
    rate = report.books_per_second
    report_measurement(f"import of 5000 new books: {rate:.0f} books/s")
    assert rate > 1000


# --- The command -----------------------------------------------------------------------------


def run_cli(settings: Settings, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": settings.require("database_url"),
        "REDIS_URL": settings.require("redis_url"),
    }
    return subprocess.run(
        [sys.executable, "-m", "pagely.cli", "import-books", *args],
        env=env,
        cwd=cwd,  # no developer .env is read
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_command_reports_bad_rows_and_a_summary(
    settings: Settings, db_cleaner: Resources, tmp_path: Path
) -> None:
    csv_file = tmp_path / "books.csv"
    csv_file.write_text(
        f"{GOODBOOKS_HEADER}\n"
        f"1,Good,,Ann,,{isbn13(1)},2001,en,4,10\n"
        "2,Bad,,Ann,,9780439023482,2001,en,4,10\n"
        "3,Also Good,,Bo,,,-17,,4,10\n",
        encoding="utf-8",
    )
    dry = await asyncio.to_thread(run_cli, settings, tmp_path, str(csv_file), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: 2 valid rows, 1 bad row" in dry.stdout
    assert await count_books(db_cleaner) == 0

    done = await asyncio.to_thread(run_cli, settings, tmp_path, str(csv_file))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "line 3: isbn13: the ISBN-13 check digit is wrong" in lines
    assert "ignored columns: id, original_title, average_rating" in lines
    assert "2 books: 2 inserted, 0 updated, 0 unchanged; 1 bad row" in lines
    assert any(line.endswith("books/s") for line in lines)
    assert await count_books(db_cleaner) == 2

    again = await asyncio.to_thread(run_cli, settings, tmp_path, str(csv_file), "--quiet")
    assert "2 books: 0 inserted, 0 updated, 2 unchanged; 1 bad row" in again.stdout
    assert await count_books(db_cleaner) == 2


async def test_the_command_exits_2_when_the_file_cannot_be_imported(
    settings: Settings, tmp_path: Path
) -> None:
    no_authors = tmp_path / "no_authors.csv"
    no_authors.write_text("title,isbn13\nDune,9780441172719\n", encoding="utf-8")
    missing = await asyncio.to_thread(run_cli, settings, tmp_path, str(no_authors))
    assert missing.returncode == 2
    assert "missing required column: authors or author" in missing.stderr

    absent = await asyncio.to_thread(run_cli, settings, tmp_path, str(tmp_path / "nope.csv"))
    assert absent.returncode == 2
    assert "cannot read" in absent.stderr

    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("title,authors\nCaf\xe9,Ann\n".encode("latin-1"))
    undecodable = await asyncio.to_thread(run_cli, settings, tmp_path, str(latin1))
    assert undecodable.returncode == 2
    assert "not UTF-8 text (line 2)" in undecodable.stderr
