"""Every table, imported here so Alembic's autogenerate and the app see one metadata."""

from pagely.models.base import metadata
from pagely.models.book import Book
from pagely.models.catalog import BookTag, IdempotencyKey, Notification, Review, SearchWord, Tag
from pagely.models.outbox import OutboxMessage, OutboxStatus
from pagely.models.role import RoleDefinition
from pagely.models.session import AuthSession
from pagely.models.user import Role, User

# Created by hand in migrations (expression and optional pg_trgm indexes), not from the models.
UNMANAGED_INDEXES = frozenset(
    {
        "ix_books_published_desc",
        "ix_books_published_asc",
        "ix_books_popularity",
        "ix_search_words_word_trgm",
    }
)

__all__ = [
    "UNMANAGED_INDEXES",
    "AuthSession",
    "Book",
    "BookTag",
    "IdempotencyKey",
    "Notification",
    "OutboxMessage",
    "OutboxStatus",
    "Review",
    "Role",
    "RoleDefinition",
    "SearchWord",
    "Tag",
    "User",
    "metadata",
]
