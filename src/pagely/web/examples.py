"""Response examples for the OpenAPI document, in one place: what a client developer sees
next to each schema in /docs and in a generated client. Pages (`{items, next_cursor}`) get
theirs composed from their item's example by `pagely.web.openapi`."""

from __future__ import annotations

from typing import Any

_AT = "2026-11-20T09:30:00Z"
_USER_ID = "7d4f3a52-1c9e-4b1a-9c55-3f1e2a8b6c01"
_BOOK_ID = "0c6f8f0e-5b7a-4d7e-8c1a-2f9b7e4d3a10"

USER = {
    "id": _USER_ID,
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "role": "user",
    "is_verified": True,
    "created_at": _AT,
}
BOOK = {
    "id": _BOOK_ID,
    "title": "The Left Hand of Darkness",
    "subtitle": None,
    "authors": ["Ursula K. Le Guin"],
    "isbn13": "9780441478125",
    "isbn10": "0441478123",
    "publisher": "Ace Books",
    "published_date": "1969-03-01",
    "page_count": 304,
    "language": "en",
    "description": "An envoy visits a winter planet whose people have no fixed sex.",
    "tags": ["science-fiction", "classics"],
    "owner_id": _USER_ID,
    "rating_avg": 4.5,
    "rating_count": 2,
    "version": 3,
    "created_at": _AT,
    "updated_at": _AT,
}
REVIEW = {
    "book_id": _BOOK_ID,
    "user_id": _USER_ID,
    "user_name": "Ada Lovelace",
    "rating": 5,
    "title": "A classic",
    "body": "Read it twice.",
    "created_at": _AT,
    "updated_at": _AT,
}
SUMMARY = {
    "rating_avg": 4.5,
    "rating_count": 2,
    "histogram": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1},
}
NOTIFICATION = {
    "id": "5a0b6a3e-9f2d-4c3b-8e1f-6d7c8b9a0e12",
    "kind": "review_created",
    "book_id": _BOOK_ID,
    "actor_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
    "data": {
        "book_title": BOOK["title"],
        "reviewer_name": "Bea Reader",
        "rating": 5,
        "review_title": "A classic",
    },
    "read": False,
    "read_at": None,
    "created_at": _AT,
}
OUTBOX_ITEM = {
    "id": "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a98",
    "kind": "email",
    "template": "verify_email",
    "to": "ada@example.com",
    "status": "sent",
    "attempts": 1,
    "next_attempt_at": _AT,
    "last_error": None,
    "created_at": _AT,
    "updated_at": _AT,
    "sent_at": _AT,
    "failed_at": None,
}

EXAMPLES: dict[str, Any] = {
    "Accepted": {"message": "If this address can receive mail, a message is on its way."},
    "VerifyOut": {"status": "verified"},
    "UserOut": USER,
    "UserAdminOut": {**USER, "is_active": True, "updated_at": _AT},
    "PermissionOut": {"name": "reviews:moderate", "description": "Remove anyone's review"},
    "RoleOut": {
        "name": "curator",
        "description": "Looks after the catalogue",
        "permissions": ["books:write_any", "reviews:moderate"],
        "built_in": False,
    },
    "TokenPair": {
        "access_token": "eyJhbGciOiJIUzI1NiJ9.access.signature",
        "refresh_token": "eyJhbGciOiJIUzI1NiJ9.refresh.signature",
        "token_type": "bearer",
        "expires_in": 900,
        "user": USER,
    },
    "SessionOut": {
        "id": "1f2e3d4c-5b6a-4978-8d6c-5b4a39281706",
        "device": "Pixel 8",
        "user_agent": "PagelyApp/1.4 (Android 15)",
        "ip": "203.0.113.7",
        "created_at": _AT,
        "last_used_at": _AT,
        "expires_at": "2027-01-14T09:30:00Z",
        "max_expires_at": "2027-03-15T09:30:00Z",
        "current": True,
    },
    "BookOut": BOOK,
    "TagOut": {"slug": "science-fiction", "book_count": 42},
    "ReviewOut": REVIEW,
    "ReviewCreated": {**REVIEW, "book": SUMMARY},
    "ReviewPage": {**SUMMARY, "items": [REVIEW], "next_cursor": None},
    "ReviewCreatedNotification": NOTIFICATION,
    "Notification": NOTIFICATION,
    "NotificationPage": {"items": [NOTIFICATION], "next_cursor": None, "unread_count": 1},
    "NotificationPreferences": {"email_on_review": True},
    "ReadAllOut": {"updated": 3},
    "OutboxItem": OUTBOX_ITEM,
    "OutboxStats": {
        "counts": {"pending": 2, "sent": 1280, "failed": 1},
        "oldest_pending_age_seconds": 4.2,
        "failed_last_hour": 0,
        "broker_queue_depth": 2,
        "counters": {
            "outbox_sent_total": 1280,
            "outbox_retried_total": 7,
            "outbox_failed_total": 1,
        },
    },
    "Liveness": {"status": "ok"},
    "Readiness": {
        "status": "ok",
        "checks": {
            "database": {"status": "ok"},
            "redis": {"status": "ok"},
            "broker": {"status": "ok"},
        },
    },
    "ErrorEnvelope": {
        "success": False,
        "error": {
            "type": "validation_error",
            "message": "Validation failed",
            "details": [{"field": "body.isbn", "message": "the ISBN-13 check digit is wrong"}],
            "request_id": "5f0c2b9e6d3a4f1b8c7e9d0a1b2c3d4e",
        },
    },
}
