"""The development signing key: random per checkout, generated once under `.pagely/`.

Development and test processes that have no JWT_SECRET get this one from the CLI (it exports
JWT_SECRET, so `pagely run`'s worker, beat and API share it). The application never reads this
file itself, and no signing key is written in the source.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from pagely.devtools.embedded import DEFAULT_HOME
from pagely.devtools.processes import DevStackError

KEY_FILE = "jwt-secret"


def pagely_home() -> Path:
    return Path(os.environ.get("PAGELY_HOME", DEFAULT_HOME)).resolve()


def dev_jwt_secret(home: Path | None = None) -> str:
    """The key kept in `home` (PAGELY_HOME, else the checkout's `.pagely/`), created on first
    use. Concurrent first uses agree: the file is published with a link that never replaces."""
    home = (home or pagely_home()).resolve()
    home.mkdir(parents=True, exist_ok=True)
    path = home / KEY_FILE
    if not path.exists():
        tmp = home / f".{KEY_FILE}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
        try:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # another process won the race: keep its key
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_text().strip()
    if len(key) < 32:
        raise DevStackError(f"{path} does not hold a usable key: delete it to make a new one")
    return key
