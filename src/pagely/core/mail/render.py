"""Render an email from `templates/email/<name>.html` and `<name>.txt`, which extend one base
layout each. Links are built from PUBLIC_BASE_URL, never from a request's Host header."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import jinja2

from pagely.core.templating import PACKAGE_DIR
from pagely.settings import Settings

# Every email Pagely sends, with its subject line (a template over the same context).
SUBJECTS: dict[str, str] = {
    "test_email": "Pagely test message",
    "verify_email": "Confirm your email address",
    "account_exists": "Someone tried to register with your email address",
    "password_reset": "Reset your Pagely password",
    "password_changed": "Your Pagely password was changed",
    "review_received": "New review of {{ book_title | truncate(80) }}",
}


class UnknownTemplate(ValueError):
    pass


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=2)
def _environment(autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(PACKAGE_DIR / "templates" / "email"),
        autoescape=autoescape,  # noqa: S701 - off only for the plain-text part and subject
        undefined=jinja2.StrictUndefined,  # a missing variable is a bug, not an empty link
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def check_template(name: str) -> None:
    if name not in SUBJECTS:
        raise UnknownTemplate(f"unknown email template {name!r}; known: {sorted(SUBJECTS)}")


def render_email(settings: Settings, name: str, context: dict[str, Any]) -> RenderedEmail:
    check_template(name)
    base_url = settings.public_base_url.rstrip("/")

    def url(path: str, **query: str) -> str:
        return f"{base_url}/{path.lstrip('/')}" + (f"?{urlencode(query)}" if query else "")

    values = {
        **context,
        "app_name": settings.app_name,
        "base_url": base_url,
        "api": settings.api_prefix,
        "url": url,
    }
    subject = _environment(False).from_string(SUBJECTS[name]).render(values)
    return RenderedEmail(
        subject=" ".join(subject.split()),  # one line, whatever the template did
        text=_environment(False).get_template(f"{name}.txt").render(values),
        html=_environment(True).get_template(f"{name}.html").render(values),
    )
