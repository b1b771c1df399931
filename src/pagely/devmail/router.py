"""Development only: the mail captured by the embedded SMTP sink, as a page and as JSON.

Mounted by create_app only when ENVIRONMENT=development and DEV_MAIL_DIR is set, and answers
only requests whose Host is a loopback name (localhost, 127.0.0.1, [::1]); others get 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from pagely.core.templating import templates
from pagely.devmail import service
from pagely.devmail.dependencies import MailDirDep, require_loopback_host
from pagely.devmail.schemas import CapturedMail
from pagely.identity.access import PUBLIC

# Only for Host names of this machine (DNS rebinding would let any web page read reset links).
router = APIRouter(
    prefix="/dev",
    tags=["development"],
    include_in_schema=False,
    dependencies=[PUBLIC, Depends(require_loopback_host)],
)


@router.get("/mail.json")
async def mail_json(directory: MailDirDep) -> list[CapturedMail]:
    return service.read_mailbox(directory)


@router.get("/mail", response_class=HTMLResponse)
async def mail_page(request: Request, directory: MailDirDep) -> HTMLResponse:
    mails = service.read_mailbox(directory)
    return templates.TemplateResponse(request, "dev/mail_list.html", {"mails": mails})


@router.get("/mail/{mail_id}", response_class=HTMLResponse)
async def mail_message(request: Request, directory: MailDirDep, mail_id: str) -> HTMLResponse:
    mail = service.find_mail(directory, mail_id)
    return templates.TemplateResponse(request, "dev/mail_message.html", {"mail": mail})
