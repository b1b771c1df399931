"""Notifications: what a review writes (a row, and an email through the outbox when the owner
wants one), and the owner's API to list them, mark them read and choose emails; against real
PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from pagely.core.db import transaction
from pagely.core.mail.render import render_email
from pagely.core.resources import Resources
from pagely.models import Book, Notification, OutboxMessage, User
from pagely.notifications import notify_review
from pagely.settings import Settings
from tests.fixtures.accounts import bearer, make_user, sign_in
from tests.fixtures.apps import make_settings

API = "/api/v1/notifications"


async def _book(
    resources: Resources, owner: User, title: str = "The Left Hand of Darkness"
) -> Book:
    book = Book(title=title, authors=["Ursula K. Le Guin"], owner_id=owner.id)
    async with transaction(resources.sessionmaker) as session:
        session.add(book)
    return book


async def _review(
    resources: Resources,
    owner: User,
    book: Book,
    reviewer: User,
    *,
    rating: int = 4,
    review_title: str | None = "Winter, beautifully",
) -> None:
    async with transaction(resources.sessionmaker) as session:
        await notify_review(
            session,
            owner=owner,
            book_id=book.id,
            book_title=book.title,
            reviewer=reviewer,
            rating=rating,
            review_title=review_title,
        )


async def _update_user(resources: Resources, user: User, **values: Any) -> User:
    async with transaction(resources.sessionmaker) as session:
        row = await session.get(User, user.id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
    return row


async def _notifications(resources: Resources, user: User) -> list[Notification]:
    async with resources.sessionmaker() as session:
        query = (
            select(Notification)
            .where(col(Notification.user_id) == user.id)
            .order_by(col(Notification.created_at))
        )
        return list((await session.scalars(query)).all())


async def _emails(resources: Resources) -> list[OutboxMessage]:
    async with resources.sessionmaker() as session:
        return list((await session.scalars(select(OutboxMessage))).all())


async def _signed_in(
    client: httpx.AsyncClient, resources: Resources, **kwargs: Any
) -> tuple[User, dict[str, str]]:
    user = await make_user(resources, **kwargs)
    return user, bearer((await sign_in(client, user.email))["access_token"])


# --- notify_review ----------------------------------------------------------------------------


async def test_a_review_notifies_the_owner_and_emails_them_through_the_outbox(
    resources: Resources,
) -> None:
    owner = await make_user(resources, name="Ada Owner")
    reviewer = await make_user(resources, name="Bea Reviewer")
    book = await _book(resources, owner)

    await _review(resources, owner, book, reviewer, rating=5)

    [notification] = await _notifications(resources, owner)
    assert notification.kind == "review_created"
    assert (notification.book_id, notification.actor_id) == (book.id, reviewer.id)
    assert notification.read_at is None
    assert notification.data == {
        "book_title": "The Left Hand of Darkness",
        "reviewer_name": "Bea Reviewer",
        "rating": 5,
        "review_title": "Winter, beautifully",
    }
    assert await _notifications(resources, reviewer) == []

    [email] = await _emails(resources)
    assert email.kind == "email"
    assert email.status == "pending"
    assert email.idempotency_key == f"review:{book.id}:{reviewer.id}"
    assert email.payload["template"] == "review_received"
    assert email.payload["to"] == owner.email
    assert email.payload["context"] == {
        "name": "Ada Owner",
        "book_id": str(book.id),
        "book_title": "The Left Hand of Darkness",
        "reviewer_name": "Bea Reviewer",
        "rating": 5,
        "review_title": "Winter, beautifully",
    }
    assert reviewer.email not in str(email.payload)  # the owner never learns it


@pytest.mark.parametrize(
    "owner_state",
    [{"email_on_review": False}, {"is_verified": False}, {"is_active": False}],
    ids=["emails_turned_off", "unverified", "deactivated"],
)
async def test_no_email_unless_the_owner_wants_it_and_can_receive_it(
    resources: Resources, owner_state: dict[str, bool]
) -> None:
    owner = await _update_user(resources, await make_user(resources), **owner_state)
    reviewer = await make_user(resources)
    book = await _book(resources, owner)

    await _review(resources, owner, book, reviewer)

    assert len(await _notifications(resources, owner)) == 1  # in-app notification regardless
    assert await _emails(resources) == []


async def test_nobody_is_notified_of_their_own_review(resources: Resources) -> None:
    owner = await make_user(resources)
    book = await _book(resources, owner)
    await _review(resources, owner, book, owner)
    assert await _notifications(resources, owner) == []
    assert await _emails(resources) == []


async def test_a_rolled_back_review_leaves_no_notification_and_no_email(
    resources: Resources,
) -> None:
    owner = await make_user(resources)
    reviewer = await make_user(resources)
    book = await _book(resources, owner)

    class ReviewFailed(Exception):
        pass

    async def review_that_fails() -> None:
        async with transaction(resources.sessionmaker) as session:
            await notify_review(
                session, owner=owner, book_id=book.id, book_title=book.title,
                reviewer=reviewer, rating=3, review_title=None,
            )  # fmt: skip
            raise ReviewFailed  # e.g. the rating aggregate update failed after notifying

    with pytest.raises(ReviewFailed):
        await review_that_fails()

    assert await _notifications(resources, owner) == []
    assert await _emails(resources) == []


async def test_each_review_gets_its_own_email(resources: Resources) -> None:
    owner = await make_user(resources)
    book = await _book(resources, owner)
    for _ in range(2):
        await _review(resources, owner, book, await make_user(resources))
    emails = await _emails(resources)
    assert len(emails) == 2
    assert len({e.idempotency_key for e in emails}) == 2


# --- the API ----------------------------------------------------------------------------------


async def test_list_is_newest_first_paginated_and_filters_unread(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner, headers = await _signed_in(client, resources)
    books = [await _book(resources, owner, title=f"Book {i}") for i in range(5)]
    reviewer = await make_user(resources, name="Cleo")
    for book in books:
        await _review(resources, owner, book, reviewer)
    # Someone else's notifications never show up.
    other = await make_user(resources)
    await _review(resources, other, await _book(resources, other), reviewer)

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await client.get(API, headers=headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["unread_count"] == 5
        assert len(page["items"]) <= 2
        seen += [item["data"]["book_title"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [f"Book {i}" for i in reversed(range(5))]  # newest first, each once

    first = (await client.get(API, headers=headers, params={"limit": "1"})).json()["items"][0]
    assert set(first) == {
        "id", "kind", "book_id", "actor_id", "data", "read", "read_at", "created_at",
    }  # fmt: skip
    assert (first["kind"], first["read"], first["read_at"]) == ("review_created", False, None)
    assert (first["book_id"], first["actor_id"]) == (str(books[-1].id), str(reviewer.id))
    assert first["data"]["reviewer_name"] == "Cleo"

    read = await client.post(f"{API}/{first['id']}/read", headers=headers)
    assert read.status_code == 200
    unread = (await client.get(API, headers=headers, params={"unread": "true"})).json()
    assert [item["data"]["book_title"] for item in unread["items"]] == [
        f"Book {i}" for i in reversed(range(4))
    ]
    assert unread["unread_count"] == 4
    everything = (await client.get(API, headers=headers)).json()
    assert len(everything["items"]) == 5

    for bad in ({"limit": "0"}, {"limit": "101"}, {"cursor": "garbage"}, {"unread": "maybe"}):
        response = await client.get(API, headers=headers, params=bad)
        assert response.status_code == 422, bad
        assert response.json()["success"] is False


async def test_a_kind_this_build_does_not_know_is_left_out_not_a_500(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    """A newer build (a rolling deploy) may write a kind this one's union has no member for:
    lists, counts and marking read leave it out instead of failing the whole page."""
    owner, headers = await _signed_in(client, resources)
    book = await _book(resources, owner)
    await _review(resources, owner, book, await make_user(resources, name="Cleo"))
    newer = Notification(user_id=owner.id, kind="book_discounted", data={"percent": 20})
    async with transaction(resources.sessionmaker) as session:
        session.add(newer)
    listed = await client.get(API, headers=headers)
    assert listed.status_code == 200, listed.text
    assert [item["kind"] for item in listed.json()["items"]] == ["review_created"]
    assert listed.json()["unread_count"] == 1
    hidden = await client.post(f"{API}/{newer.id}/read", headers=headers)
    assert hidden.status_code == 404
    assert (await client.post(f"{API}/read-all", headers=headers)).json() == {"updated": 1}


def test_the_kinds_served_are_the_members_of_the_contract_union() -> None:
    from pagely.notifications.schemas import Notification as NotificationUnion
    from pagely.notifications.service import KINDS

    mapping = NotificationUnion.model_json_schema()["discriminator"]["mapping"]
    assert set(mapping) == set(KINDS)


async def test_unread_filter_pages_through_while_items_are_marked_read(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner, headers = await _signed_in(client, resources)
    reviewer = await make_user(resources)
    for i in range(4):
        await _review(resources, owner, await _book(resources, owner, title=f"B{i}"), reviewer)

    page = (await client.get(API, headers=headers, params={"unread": "true", "limit": "2"})).json()
    for item in page["items"]:  # read what the first page showed, as the app would
        await client.post(f"{API}/{item['id']}/read", headers=headers)
    params = {"unread": "true", "limit": "2", "cursor": page["next_cursor"]}
    second = (await client.get(API, headers=headers, params=params)).json()
    assert [i["data"]["book_title"] for i in second["items"]] == ["B1", "B0"]
    assert second["next_cursor"] is None
    assert second["unread_count"] == 2


async def test_marking_read_is_idempotent_and_keeps_the_first_time(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner, headers = await _signed_in(client, resources)
    await _review(resources, owner, await _book(resources, owner), await make_user(resources))
    [row] = await _notifications(resources, owner)

    first = await client.post(f"{API}/{row.id}/read", headers=headers)
    assert first.status_code == 200
    body = first.json()
    assert body["id"] == str(row.id)
    assert body["read"] is True
    assert body["read_at"] is not None
    again = await client.post(f"{API}/{row.id}/read", headers=headers)
    assert again.status_code == 200
    assert again.json() == body


async def test_someone_elses_notification_is_not_found_and_stays_unread(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner = await make_user(resources)
    await _review(resources, owner, await _book(resources, owner), await make_user(resources))
    [row] = await _notifications(resources, owner)
    _, intruder = await _signed_in(client, resources)

    for notification_id in (row.id, uuid.uuid4()):
        response = await client.post(f"{API}/{notification_id}/read", headers=intruder)
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["type"] == "notification_not_found"
        assert response.json()["success"] is False
    assert (await client.post(f"{API}/not-a-uuid/read", headers=intruder)).status_code == 422
    read_all = await client.post(f"{API}/read-all", headers=intruder)
    assert read_all.json() == {"updated": 0}

    [still] = await _notifications(resources, owner)
    assert still.read_at is None


async def test_read_all_marks_only_my_unread_ones(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner, headers = await _signed_in(client, resources)
    other = await make_user(resources)
    reviewer = await make_user(resources)
    for i in range(3):
        await _review(resources, owner, await _book(resources, owner, title=f"M{i}"), reviewer)
    await _review(resources, other, await _book(resources, other), reviewer)
    first = (await client.get(API, headers=headers, params={"limit": "1"})).json()["items"][0]
    read_before = (await client.post(f"{API}/{first['id']}/read", headers=headers)).json()

    response = await client.post(f"{API}/read-all", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"updated": 2}
    assert (await client.post(f"{API}/read-all", headers=headers)).json() == {"updated": 0}

    listing = (await client.get(API, headers=headers)).json()
    assert listing["unread_count"] == 0
    assert all(item["read"] for item in listing["items"])
    by_id = {item["id"]: item for item in listing["items"]}
    assert by_id[first["id"]]["read_at"] == read_before["read_at"]  # not moved
    [others] = await _notifications(resources, other)
    assert others.read_at is None


async def test_preferences_round_trip_and_stop_the_emails(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner, headers = await _signed_in(client, resources)
    got = await client.get(f"{API}/preferences", headers=headers)
    assert (got.status_code, got.json()) == (200, {"email_on_review": True})

    off = await client.patch(f"{API}/preferences", headers=headers, json={"email_on_review": False})
    assert (off.status_code, off.json()) == (200, {"email_on_review": False})
    assert (await client.get(f"{API}/preferences", headers=headers)).json() == {
        "email_on_review": False
    }
    unchanged = await client.patch(f"{API}/preferences", headers=headers, json={})
    assert unchanged.json() == {"email_on_review": False}

    async with resources.sessionmaker() as session:
        stored = await session.get(User, owner.id)
        assert stored is not None
        assert stored.email_on_review is False
    await _review(resources, stored, await _book(resources, owner), await make_user(resources))
    assert len(await _notifications(resources, owner)) == 1
    assert await _emails(resources) == []

    on = await client.patch(f"{API}/preferences", headers=headers, json={"email_on_review": True})
    assert on.json() == {"email_on_review": True}


@pytest.mark.parametrize(
    "body",
    [
        {"email_on_review": False, "is_verified": True},
        {"email_on_review": "no"},
        {"email_on_review": 0},
        {"email_on_review": None},
        ["email_on_review"],
    ],
)
async def test_bad_preference_bodies_are_refused_and_change_nothing(
    client: httpx.AsyncClient, resources: Resources, body: Any
) -> None:
    owner, headers = await _signed_in(client, resources)
    response = await client.patch(f"{API}/preferences", headers=headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["type"] == "validation_error"
    async with resources.sessionmaker() as session:
        stored = await session.get(User, owner.id)
        assert stored is not None
        assert (stored.email_on_review, stored.is_verified) == (True, True)


async def test_every_route_needs_a_token_but_not_a_verified_email(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    routes = [
        ("GET", API, None),
        ("POST", f"{API}/{uuid.uuid4()}/read", None),
        ("POST", f"{API}/read-all", None),
        ("GET", f"{API}/preferences", None),
        ("PATCH", f"{API}/preferences", {"email_on_review": False}),
    ]
    for method, url, body in routes:
        response = await client.request(method, url, json=body)
        assert response.status_code == 401, (method, url)
        assert response.json()["error"]["type"] == "invalid_token"
        bad = await client.request(method, url, json=body, headers=bearer("not.a.token"))
        assert bad.status_code == 401, (method, url)

    _, unverified = await _signed_in(client, resources, verified=False)
    for method, url, body in routes:
        response = await client.request(method, url, json=body, headers=unverified)
        expected = 404 if url.endswith("/read") else 200
        assert response.status_code == expected, (method, url, response.text)


async def test_routes_are_documented_for_the_generated_client(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operations = {
        op["operationId"]: (op, path)
        for path, item in spec["paths"].items()
        if path.startswith(API)
        for op in item.values()
    }
    assert set(operations) == {
        "notifications_list",
        "notifications_mark_read",
        "notifications_read_all",
        "notifications_get_preferences",
        "notifications_update_preferences",
    }
    for op, path in operations.values():
        assert op["tags"] == ["notifications"], path
        assert op["summary"], path
        assert "401" in op["responses"], path
    assert "404" in operations["notifications_mark_read"][0]["responses"]


# --- the email --------------------------------------------------------------------------------


@pytest.fixture
def mail_settings(settings: Settings) -> Settings:
    return make_settings(
        settings.require("database_url"), settings.require("redis_url"),
        public_base_url="https://shop.example/",
    )  # fmt: skip


async def test_the_email_renders_what_notify_review_enqueued(
    resources: Resources, mail_settings: Settings
) -> None:
    owner = await make_user(resources, name="Ada")
    reviewer = await make_user(resources, name="Bea <b>Bold</b>")
    book = await _book(resources, owner, title="Dune & Sons")
    await _review(resources, owner, book, reviewer, rating=4, review_title="Sandy")
    [email] = await _emails(resources)

    rendered = render_email(mail_settings, "review_received", email.payload["context"])

    assert rendered.subject == "New review of Dune & Sons"
    book_link = f"https://shop.example/books/{book.id}"
    settings_link = "https://shop.example/api/v1/notifications/preferences"
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert f'href="{book_link}"' in rendered.html
    assert "Dune &amp; Sons" in rendered.html
    assert "Bea &lt;b&gt;Bold&lt;/b&gt;" in rendered.html  # escaped in HTML
    assert "<b>Bold" not in rendered.html
    assert "Sandy" in rendered.html
    assert "4 out of 5 stars" in rendered.html
    assert settings_link in rendered.html
    assert "email_on_review" in rendered.html

    assert book_link in rendered.text
    assert "Dune & Sons" in rendered.text
    assert "Bea <b>Bold</b>" in rendered.text
    assert "4 out of 5 stars" in rendered.text
    assert settings_link in rendered.text
    assert '{"email_on_review": false}' in rendered.text


def test_the_email_works_without_a_review_title_and_keeps_the_subject_short(
    mail_settings: Settings,
) -> None:
    context = {
        "name": "Ada", "book_id": str(uuid.uuid4()), "book_title": "A\r\nBcc: x@evil " + "y" * 400,
        "reviewer_name": "Bea", "rating": 1, "review_title": None,
    }  # fmt: skip
    rendered = render_email(mail_settings, "review_received", context)
    assert "\n" not in rendered.subject
    assert "\r" not in rendered.subject
    assert len(rendered.subject) < 120
    assert "1 out of 5 stars" in rendered.text
    assert "<" not in rendered.text  # plain text is plain
    assert "None" not in rendered.text
    assert "None" not in rendered.html
