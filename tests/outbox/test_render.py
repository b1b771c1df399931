"""Every email template renders both parts from the shared layouts, with links built from
PUBLIC_BASE_URL and user input escaped in HTML."""

from __future__ import annotations

from typing import Any

import pytest

from pagely.core.mail.render import SUBJECTS, UnknownTemplate, render_email
from pagely.core.mail.smtp import build_message
from pagely.settings import Settings
from tests.fixtures.apps import make_settings

CONTEXTS: dict[str, dict[str, Any]] = {
    "test_email": {},
    "verify_email": {"name": "Ada", "token": "TOKEN1", "valid_hours": 48},
    "account_exists": {"name": "Ada", "reset_token": "TOKEN2", "valid_minutes": 60},
    "password_reset": {"name": "Ada", "token": "TOKEN3", "valid_minutes": 60},
    "password_changed": {"name": "Ada"},
    "review_received": {
        "name": "Ada",
        "book_id": "BOOK1",
        "book_title": "Dune",
        "reviewer_name": "Bea",
        "rating": 4,
        "review_title": "Sandy",
    },
}
LINKS = {
    "test_email": "https://shop.example/",
    "verify_email": "https://shop.example/api/v1/auth/verify/TOKEN1",
    "account_exists": "https://shop.example/api/v1/auth/reset-password/TOKEN2",
    "password_reset": "https://shop.example/api/v1/auth/reset-password/TOKEN3",
    "review_received": "https://shop.example/books/BOOK1",
}
# Subjects that are templates over the context; the others are fixed strings.
RENDERED_SUBJECTS = {"review_received": "New review of Dune"}


@pytest.fixture
def mail_settings(settings: Settings) -> Settings:
    return make_settings(
        settings.require("database_url"), settings.require("redis_url"),
        public_base_url="https://shop.example/",
    )  # fmt: skip


def test_every_template_is_covered() -> None:
    assert set(CONTEXTS) == set(SUBJECTS)


@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_each_template_renders_both_parts_with_its_link(mail_settings: Settings, name: str) -> None:
    rendered = render_email(mail_settings, name, CONTEXTS[name])
    assert rendered.subject == RENDERED_SUBJECTS.get(name, SUBJECTS[name])
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert 'lang="en"' in rendered.html
    assert "Pagely" in rendered.html
    assert "<" not in rendered.text  # plain text is plain
    assert "https://shop.example" in rendered.text  # the shared footer
    if name in LINKS:
        assert f'href="{LINKS[name]}"' in rendered.html
        assert LINKS[name] in rendered.text
    if "name" in CONTEXTS[name]:
        assert "Ada" in rendered.html
        assert "Ada" in rendered.text


def test_user_input_is_escaped_in_html_only(mail_settings: Settings) -> None:
    context = {"name": '<script>alert("x")</script>', "token": "T", "valid_hours": 48}
    rendered = render_email(mail_settings, "verify_email", context)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert '<script>alert("x")</script>' in rendered.text


def test_a_missing_variable_or_template_is_an_error(mail_settings: Settings) -> None:
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        render_email(mail_settings, "verify_email", {"name": "Ada"})
    with pytest.raises(UnknownTemplate):
        render_email(mail_settings, "nope", {})


def test_the_message_has_text_then_html_and_transactional_headers(
    mail_settings: Settings,
) -> None:
    rendered = render_email(mail_settings, "password_changed", {"name": "Ada"})
    message = build_message(mail_settings, rendered, to="ada@example.com", message_id="abc")
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert message["Message-ID"] == "<abc@pagely.local>"
    assert message["Subject"] == "Your Pagely password was changed"
    assert message["Auto-Submitted"] == "auto-generated"
