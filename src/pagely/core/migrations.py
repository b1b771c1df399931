"""Programmatic Alembic: upgrade to head, and the drift check used by `make lint`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[3]  # a source checkout's root


def _alembic_ini() -> Path:
    """The checkout's alembic.ini, else the working directory's (an installed package, as in
    the image: /app holds alembic.ini and migrations/)."""
    for candidate in (ROOT / "alembic.ini", Path.cwd() / "alembic.ini"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        "alembic.ini not found: run pagely from a source checkout or from the directory that "
        "holds alembic.ini and migrations/"
    )


def alembic_config(database_url: str | None = None) -> Config:
    ini = _alembic_ini()
    config = Config(str(ini))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def check(database_url: str | None = None) -> None:
    """Raise when the models and the migrations disagree (alembic check)."""
    command.check(alembic_config(database_url))


def downgrade(database_url: str | None, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
