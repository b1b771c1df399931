"""In-app notifications and the emails that go with them. Other features call
`notify_review` inside their own transaction."""

from pagely.notifications.service import notify_review

__all__ = ["notify_review"]
