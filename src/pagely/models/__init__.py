"""Every table, imported here so Alembic's autogenerate and the app see one metadata."""

from pagely.models.base import metadata
from pagely.models.book import Book
from pagely.models.outbox import OutboxMessage, OutboxStatus
from pagely.models.session import AuthSession
from pagely.models.user import Role, User

__all__ = ["AuthSession", "Book", "OutboxMessage", "OutboxStatus", "Role", "User", "metadata"]
