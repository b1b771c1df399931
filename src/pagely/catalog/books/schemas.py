"""Request and response bodies of books, and the parsed query of a listing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from pagely.catalog.books.errors import QueryTooLong
from pagely.catalog.tags.service import MAX_TAG_LENGTH, MAX_TAGS, normalise_tags
from pagely.core.isbn import InvalidISBN, parse_isbn
from pagely.core.schemas import NamedEnum, Strict, omit_null

Text500 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Language = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[a-zA-Z]{2}$")
]


def _check_isbn(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_isbn(value)
    except InvalidISBN as exc:
        raise ValueError(str(exc)) from None
    return value


Isbn = Annotated[str, StringConstraints(max_length=20), AfterValidator(_check_isbn)]
Tags = Annotated[
    list[Annotated[str, StringConstraints(max_length=MAX_TAG_LENGTH)]],
    Field(max_length=MAX_TAGS),
    AfterValidator(normalise_tags),
]

BOOK_EXAMPLE: dict[str, Any] = {
    "title": "The Left Hand of Darkness",
    "authors": ["Ursula K. Le Guin"],
    "isbn": "978-0-441-47812-5",
    "publisher": "Ace Books",
    "published_date": "1969-03-01",
    "page_count": 304,
    "language": "en",
    "description": "An envoy to a winter planet whose people have no fixed sex.",
    "tags": ["Science Fiction", "classics"],
}


class BookIn(Strict):
    """A whole book: the body of POST and PUT."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [BOOK_EXAMPLE]})

    title: Text500
    subtitle: Text500 | None = None
    authors: list[Name] = Field(min_length=1, max_length=20)
    isbn: Isbn | None = Field(
        default=None, description="ISBN-10 or ISBN-13; hyphens and spaces allowed."
    )
    publisher: Short | None = None
    published_date: date | None = None
    page_count: int | None = Field(default=None, ge=1, le=100_000)
    language: Language = Field(default="en", description="ISO 639-1 code.")
    description: str | None = Field(default=None, max_length=20_000)
    tags: Tags = Field(default_factory=list, description="Free-form; stored as lowercase slugs.")


class BookPatch(Strict):
    """Some fields of a book: the body of PATCH. `null` clears an optional field."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"page_count": 320, "tags": ["sci-fi"]}]}
    )

    # Required fields take no null (422): the contract offers none for them.
    title: Text500 | None = Field(default=None, json_schema_extra=omit_null)
    subtitle: Text500 | None = None
    authors: list[Name] | None = Field(
        default=None, min_length=1, max_length=20, json_schema_extra=omit_null
    )
    isbn: Isbn | None = None
    publisher: Short | None = None
    published_date: date | None = None
    page_count: int | None = Field(default=None, ge=1, le=100_000)
    language: Language | None = Field(default=None, json_schema_extra=omit_null)
    description: str | None = Field(default=None, max_length=20_000)
    tags: Tags | None = Field(default=None, json_schema_extra=omit_null)

    @field_validator("title", "authors", "language", "tags")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value


class BookOut(BaseModel):
    id: uuid.UUID
    title: str
    subtitle: str | None
    authors: list[str]
    isbn13: str | None
    isbn10: str | None
    publisher: str | None
    published_date: date | None
    page_count: int | None
    language: str
    description: str | None
    tags: list[str]
    owner_id: uuid.UUID | None
    rating_avg: float = Field(description="Mean of the reviews' ratings, 0 when none.")
    rating_count: int
    version: int = Field(description="Grows with every change; the ETag is derived from it.")
    created_at: datetime
    updated_at: datetime


class BookPage(BaseModel):
    items: list[BookOut]
    next_cursor: str | None = None


class BookSort(NamedEnum):
    """The listing's orders: a named schema in the contract, so a generated client gets an
    enum rather than a free string."""

    relevance = "relevance"
    by_title = "title"  # not `title`: str has a method of that name
    published_date_desc = "-published_date"
    published_date = "published_date"
    rating_desc = "-rating"
    created_at_desc = "-created_at"


@dataclass(frozen=True)
class Filters:
    """A listing's filters, normalised: what the cache key and the SQL are built from."""

    q: str | None = None
    author: str | None = None
    tags: tuple[str, ...] = ()
    language: str | None = None
    publisher: str | None = None
    published_from: date | None = None
    published_to: date | None = None
    min_rating: float | None = None
    owner_id: uuid.UUID | None = None

    @classmethod
    def parse(
        cls,
        *,
        q: str | None,
        max_query_length: int,
        author: str | None,
        tag: list[str] | None,
        language: str | None,
        publisher: str | None,
        published_from: date | None,
        published_to: date | None,
        min_rating: float | None,
        owner_id: uuid.UUID | None,
    ) -> Filters:
        """From the query string: blanks dropped, tags as slugs, the language lower case.
        A search longer than `max_query_length` (a setting) is refused."""
        if q is not None and len(q) > max_query_length:
            raise QueryTooLong(max_query_length)
        return cls(
            q=q.strip() or None if q else None,
            author=author.strip() or None if author else None,
            tags=tuple(normalise_tags(tag or [])),
            language=language.lower() if language else None,
            publisher=publisher,
            published_from=published_from,
            published_to=published_to,
            min_rating=min_rating,
            owner_id=owner_id,
        )

    @property
    def empty(self) -> bool:
        return self == Filters()
