"""Where the development mail pages read the captured mail from."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request


async def get_mail_dir(request: Request) -> str:
    # The app's own settings: the pages are mounted only when they name a directory.
    directory: str = request.app.state.settings.dev_mail_dir
    return directory


MailDirDep = Annotated[str, Depends(get_mail_dir)]
