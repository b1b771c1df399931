"""Reading a catalog CSV into rows ready to write, without touching the database: the header
mapped to known columns, each row validated (a reason a person can act on when it fails), and
rows that repeat an earlier row's book turned away."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pagely.catalog.importing.errors import RowError, UnreadableCatalog
from pagely.catalog.tags.service import MAX_TAGS, normalise_tags
from pagely.core.isbn import InvalidISBN, parse_isbn

DEFAULT_LANGUAGE = "en"
# A year this far ahead is a typo, not a forthcoming book.
MAX_YEARS_AHEAD = 5
MAX_PAGE_COUNT = 100_000
MAX_POPULARITY = 2**31 - 1  # an integer column

# Accepted column names (after normalising: lower case, spaces and hyphens as underscores),
# the first of each tuple preferred when a file has several.
ALIASES: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "subtitle": ("subtitle",),
    "authors": ("authors", "author"),
    "isbn13": ("isbn13", "isbn_13"),
    "isbn10": ("isbn10", "isbn_10"),
    "isbn": ("isbn",),
    "published_date": ("published_date", "publication_date"),
    "publication_year": ("publication_year", "published_year", "year"),
    "language": ("language", "language_code", "lang"),
    "publisher": ("publisher",),
    "page_count": ("page_count", "pages", "num_pages"),
    "description": ("description",),
    "tags": ("tags",),
    "popularity": ("ratings_count", "popularity"),
}
REQUIRED = ("title", "authors")
LIST_SEPARATOR = "|"

_MAX_LENGTH = {"title": 500, "subtitle": 500, "publisher": 200}
_MAX_AUTHOR_LENGTH = 200

# Every ISO 639-1 code.
_ISO_639_1_CODES = (
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv "
    "cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht "
    "hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la "
    "lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj "
    "om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv "
    "sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"
)
_ISO_639_1 = frozenset(_ISO_639_1_CODES.split())
# ISO 639-2 (bibliographic and terminology) codes of the languages books are mostly written
# in, and withdrawn 639-1 codes. Filipino has no 639-1 code: it is filed under Tagalog.
_TO_639_1_PAIRS = (
    "afr:af alb:sq sqi:sq amh:am ara:ar arm:hy hye:hy aze:az baq:eu eus:eu bel:be ben:bn "
    "bos:bs bre:br bul:bg bur:my mya:my cat:ca chi:zh zho:zh hrv:hr cze:cs ces:cs dan:da "
    "dut:nl nld:nl eng:en epo:eo est:et fao:fo fil:tl fin:fi fre:fr fra:fr geo:ka kat:ka "
    "ger:de deu:de gla:gd gle:ga glg:gl gre:el ell:el guj:gu hau:ha heb:he hin:hi hun:hu "
    "ibo:ig ice:is isl:is ind:id ita:it jpn:ja kan:kn kaz:kk khm:km kor:ko kur:ku lao:lo "
    "lat:la lav:lv lit:lt ltz:lb mac:mk mkd:mk mal:ml mao:mi mri:mi mar:mr may:ms msa:ms "
    "mlt:mt mon:mn nep:ne nob:nb nno:nn nor:no pan:pa per:fa fas:fa pol:pl por:pt pus:ps "
    "rum:ro ron:ro rus:ru san:sa sin:si slo:sk slk:sk slv:sl som:so spa:es srp:sr swa:sw "
    "swe:sv tam:ta tat:tt tel:te tgl:tl tha:th tib:bo bod:bo tur:tr ukr:uk urd:ur uzb:uz "
    "vie:vi wel:cy cym:cy xho:xh yid:yi yor:yo zul:zu iw:he in:id ji:yi jw:jv mo:ro"
)
_TO_639_1 = dict(pair.split(":") for pair in _TO_639_1_PAIRS.split())
# "Several", "undetermined", "not a language": no single language to record, as if blank.
_NO_LANGUAGE = frozenset({"mul", "und", "zxx", "mis"})

_YEAR = re.compile(r"[+-]?\d+(?:\.0*)?")
_YEAR_MONTH = re.compile(r"(\d{4})-(\d{2})")
_INTEGER = re.compile(r"\d+(?:\.0*)?")


@dataclass(frozen=True)
class ColumnMap:
    """Where each field is in a row, the header name it has there, and what is not used."""

    index: Mapping[str, int]
    names: Mapping[str, str]
    width: int
    ignored: tuple[str, ...]

    def has(self, name: str) -> bool:
        return name in self.index

    def has_any(self, *names: str) -> bool:
        return any(name in self.index for name in names)


@dataclass(slots=True)
class BookRow:
    """A valid row, ready to write: the columns of `books` an import sets."""

    line: int
    title: str
    authors: list[str]
    subtitle: str | None = None
    isbn13: str | None = None
    isbn10: str | None = None
    publisher: str | None = None
    published_date: date | None = None
    page_count: int | None = None
    language: str = DEFAULT_LANGUAGE
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    popularity: int = 0
    # A year was given but is no calendar date (BCE, zero, far future): imported undated.
    undated: bool = False


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    reason: str


def normalise_column_name(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def map_columns(header: Sequence[str]) -> ColumnMap:
    """Find the known columns in a header row; UnreadableCatalog when a required one is missing."""
    positions: dict[str, int] = {}
    for i, name in enumerate(header):
        positions.setdefault(normalise_column_name(name), i)
    index: dict[str, int] = {}
    for name, aliases in ALIASES.items():
        found = next((positions[alias] for alias in aliases if alias in positions), None)
        if found is not None:
            index[name] = found
    missing = [" or ".join(ALIASES[name]) for name in REQUIRED if name not in index]
    if missing:
        raise UnreadableCatalog(f"missing required column: {', '.join(missing)}")
    used = set(index.values())
    return ColumnMap(
        index=index,
        names={name: header[i].strip() for name, i in index.items()},
        width=len(header),
        ignored=tuple(name.strip() for i, name in enumerate(header) if i not in used),
    )


def parse_row(
    values: Sequence[str], columns: ColumnMap, line: int, *, today: date | None = None
) -> BookRow:
    """One data row to a BookRow; RowError with a reason a person can act on."""
    if len(values) != columns.width:
        raise RowError(f"has {len(values)} fields, the header has {columns.width}")
    if any("\x00" in value for value in values):
        raise RowError("contains a NUL character")

    def cell(name: str) -> str:
        i = columns.index.get(name)
        return values[i].strip() if i is not None else ""

    def label(name: str) -> str:
        return columns.names[name]

    def short_text(name: str) -> str | None:
        value = cell(name) or None
        if value is not None and len(value) > _MAX_LENGTH[name]:
            raise RowError(f"{label(name)} is longer than {_MAX_LENGTH[name]} characters")
        return value

    title = short_text("title")
    if title is None:
        raise RowError(f"{label('title')} is missing")
    authors = _split_list(cell("authors"))
    if not authors:
        raise RowError(f"{label('authors')} is missing")
    if any(len(author) > _MAX_AUTHOR_LENGTH for author in authors):
        raise RowError(f"{label('authors')}: a name is longer than {_MAX_AUTHOR_LENGTH} characters")
    isbn13, isbn10 = _isbns(columns, cell)
    published, undated = _published_date(columns, cell, today or date.today())
    tags = normalise_tags(_split_list(cell("tags")))
    if len(tags) > MAX_TAGS:
        raise RowError(f"{label('tags')}: more than {MAX_TAGS} tags")
    return BookRow(
        line=line,
        title=title,
        authors=authors,
        subtitle=short_text("subtitle"),
        isbn13=isbn13,
        isbn10=isbn10,
        publisher=short_text("publisher"),
        published_date=published,
        page_count=_page_count(columns, cell),
        language=_language(columns, cell),
        description=cell("description") or None,
        tags=tags,
        popularity=_popularity(columns, cell),
        undated=undated,
    )


def _split_list(value: str) -> list[str]:
    """'a| b ||a' -> ['a', 'b']: trimmed, blanks and repeats dropped, order kept."""
    return list(dict.fromkeys(part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()))


def _isbns(columns: ColumnMap, cell: Callable[[str], str]) -> tuple[str | None, str | None]:
    parsed: list[tuple[str, str, str, str | None]] = []  # (column, raw, isbn13, isbn10)
    for name in ("isbn13", "isbn10", "isbn"):
        raw = cell(name)
        if raw:
            try:
                parsed.append((columns.names[name], raw, *parse_isbn(raw)))
            except InvalidISBN as exc:
                raise RowError(f"{columns.names[name]}: {exc}") from None
    if not parsed:
        return None, None
    first = parsed[0]
    for other in parsed[1:]:
        if other[2] != first[2]:
            raise RowError(f"{first[0]} {first[1]} and {other[0]} {other[1]} are not the same book")
    return first[2], first[3]


def _published_date(
    columns: ColumnMap, cell: Callable[[str], str], today: date
) -> tuple[date | None, bool]:
    """(date, undated): a year alone is 1 January of it; a year that is no usable date (BCE,
    zero, more than MAX_YEARS_AHEAD ahead) gives no date rather than a failed row."""
    for name in ("published_date", "publication_year"):
        raw = cell(name)
        if not raw:
            continue
        label = columns.names[name]
        if _YEAR.fullmatch(raw):
            year, month, day = int(float(raw)), 1, 1
        elif name == "published_date" and (match := _YEAR_MONTH.fullmatch(raw)):
            year, month, day = int(match[1]), int(match[2]), 1
        elif name == "published_date":
            try:
                parsed = date.fromisoformat(raw)
            except ValueError:
                raise RowError(f"{label}: {raw!r} is not a date (YYYY-MM-DD)") from None
            year, month, day = parsed.year, parsed.month, parsed.day
        else:
            raise RowError(f"{label}: {raw!r} is not a year")
        if not 1 <= year <= today.year + MAX_YEARS_AHEAD:
            return None, True
        try:
            return date(year, month, day), False
        except ValueError:
            raise RowError(f"{label}: {raw!r} is not a date (YYYY-MM-DD)") from None
    return None, False


def _language(columns: ColumnMap, cell: Callable[[str], str]) -> str:
    """'en', 'EN', 'en-US', 'eng' -> 'en'; blank (or 'mul', 'und') -> the default."""
    raw = cell("language")
    code = re.split(r"[-_]", raw.lower(), maxsplit=1)[0]
    if not code or code in _NO_LANGUAGE:
        return DEFAULT_LANGUAGE
    code = _TO_639_1.get(code, code)
    if code not in _ISO_639_1:
        raise RowError(f"{columns.names['language']}: {raw!r} is not an ISO 639 language code")
    return code


def _whole_number(columns: ColumnMap, name: str, raw: str) -> int:
    if not _INTEGER.fullmatch(raw):
        raise RowError(f"{columns.names[name]}: {raw!r} is not a whole number")
    return int(float(raw)) if "." in raw else int(raw)


def _page_count(columns: ColumnMap, cell: Callable[[str], str]) -> int | None:
    raw = cell("page_count")
    if not raw:
        return None
    pages = _whole_number(columns, "page_count", raw)
    if pages > MAX_PAGE_COUNT:
        raise RowError(f"{columns.names['page_count']}: {pages} pages is not plausible")
    return pages or None  # 0: unknown, as many catalogs write it


def _popularity(columns: ColumnMap, cell: Callable[[str], str]) -> int:
    raw = cell("popularity")
    return min(_whole_number(columns, "popularity", raw), MAX_POPULARITY) if raw else 0


@dataclass(frozen=True)
class Catalog:
    columns: ColumnMap
    rows: Iterator[BookRow | BadRow]  # parsed lazily, in file order
    lines: int  # physical lines in the file, for a progress bar


def read_catalog(lines: Iterable[str], *, today: date | None = None) -> Catalog:
    """Map the header (UnreadableCatalog when unusable) and parse the rows lazily. `lines` as
    from a file opened with newline="" (quoted fields may span lines). A row that repeats an
    earlier row's book (same ISBN, or no ISBN and the same title and authors) is a BadRow:
    the first one wins."""
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise UnreadableCatalog("the file is empty") from None
    except csv.Error as exc:
        raise UnreadableCatalog(f"line 1: {exc}") from None
    columns = map_columns(header)
    return Catalog(columns, _parse_rows(reader, columns, today), 0)


def open_catalog(path: Path, *, today: date | None = None) -> Catalog:
    """Read a UTF-8 CSV file (a byte-order mark is fine) and map its header."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableCatalog(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text_ = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UnreadableCatalog(f"{path} is not UTF-8 text (line {line})") from None
    catalog = read_catalog(io.StringIO(text_, newline=""), today=today)
    lines = text_.count("\n") + (0 if text_.endswith("\n") else 1)
    return Catalog(catalog.columns, catalog.rows, lines)


def _parse_rows(reader: Any, columns: ColumnMap, today: date | None) -> Iterator[BookRow | BadRow]:
    """`reader` is a csv.reader (its line_num gives where each record starts)."""
    first_seen: dict[object, int] = {}
    end: int = reader.line_num
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader cannot resync after a broken record, so the file ends here.
            raise UnreadableCatalog(f"line {end + 1}: {exc}") from None
        line, end = end + 1, reader.line_num
        if not values or values == [""]:
            continue
        try:
            row = parse_row(values, columns, line, today=today)
        except RowError as exc:
            yield BadRow(line, str(exc))
            continue
        key: object = row.isbn13 or ("no isbn", row.title.lower(), tuple(row.authors))
        if key in first_seen:
            what = f"ISBN {row.isbn13}" if row.isbn13 else "title and authors, and no ISBN"
            yield BadRow(line, f"same {what} as line {first_seen[key]}")
            continue
        first_seen[key] = line
        yield row
