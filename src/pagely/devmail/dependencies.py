"""Where the development mail pages read the captured mail from, and who may ask."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pagely.devmail.errors import NotOnLoopback

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


def loopback_host(host: str) -> bool:
    """Whether a Host header names this machine's loopback (`localhost`, `127.0.0.1`, `[::1]`),
    with or without a port."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        name, port = name + "]", rest.removeprefix(":")
        if rest and not rest.startswith(":"):
            return False
    else:
        name, _, port = host.partition(":")
    return name in LOOPBACK_HOSTS and (port == "" or port.isdigit()) and not host.endswith(":")


async def require_loopback_host(request: Request) -> None:
    if not loopback_host(request.headers.get("host", "")):
        raise NotOnLoopback()


async def get_mail_dir(request: Request) -> str:
    # The app's own settings: the pages are mounted only when they name a directory.
    directory: str = request.app.state.settings.dev_mail_dir
    return directory


MailDirDep = Annotated[str, Depends(get_mail_dir)]
