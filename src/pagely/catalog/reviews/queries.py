"""SQL of reviews: the one place the rating aggregates are computed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Update, func, select, update
from sqlalchemy.dialects.postgresql import array

from pagely.models import Book, Review
from pagely.models.base import table

_BOOKS = table(Book)
_REVIEWS = table(Review)


def recompute_ratings(book_ids: Sequence[uuid.UUID] | None = None) -> Update:
    """An UPDATE that sets these books' (every book's, for None) count, sum, 1..5 histogram
    and average from their reviews, and moves their version. A book without reviews gets
    zeros. Review writes run it for their book under the book's row lock; the benchmark's
    data loader runs it for the whole catalog."""
    rating = _REVIEWS.c.rating
    aggregates = (
        select(
            _BOOKS.c.id.label("book_id"),
            func.count(rating).label("count"),
            func.coalesce(func.sum(rating), 0).label("sum"),
            array([func.count(rating).filter(rating == stars) for stars in range(1, 6)]).label(
                "hist"
            ),
            func.coalesce(func.round(func.avg(rating), 2), 0).label("avg"),
        )
        .select_from(_BOOKS.outerjoin(_REVIEWS, _REVIEWS.c.book_id == _BOOKS.c.id))
        .group_by(_BOOKS.c.id)
    )
    if book_ids is not None:
        aggregates = aggregates.where(_BOOKS.c.id.in_(book_ids))
    computed = aggregates.subquery("computed")
    return (
        update(_BOOKS)
        .where(_BOOKS.c.id == computed.c.book_id)
        .values(
            rating_count=computed.c["count"],
            rating_sum=computed.c["sum"],
            rating_hist=computed.c.hist,
            rating_avg=computed.c.avg,
            version=_BOOKS.c.version + 1,
            updated_at=func.now(),
        )
    )
