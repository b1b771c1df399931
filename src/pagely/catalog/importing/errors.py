"""What can go wrong reading a catalog: the whole file, or one row of it."""

from __future__ import annotations


class UnreadableCatalog(ValueError):
    """The file cannot be imported at all: unreadable, not UTF-8, not CSV, or a required
    column is missing."""


class RowError(ValueError):
    """One row cannot be imported; the message says why, naming the column."""
