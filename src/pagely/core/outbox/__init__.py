"""The transactional outbox. Services call `enqueue_email` inside their transaction; the row
is handed to Celery after commit, and a periodic sweep re-dispatches what was not delivered."""

from pagely.core.outbox.enqueue import enqueue_email

__all__ = ["enqueue_email"]
