"""/auth: registration, verification, sign-in, tokens, profile, passwords, sessions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import OAuth2PasswordRequestForm

from pagely.core.db import SessionDep
from pagely.core.errors import declare
from pagely.core.http import JSON, prefers_json
from pagely.core.ratelimit import RateLimited
from pagely.core.resources import Resources, ResourcesDep
from pagely.core.templating import templates
from pagely.identity import password_policy, service
from pagely.identity.access import PUBLIC
from pagely.identity.dependencies import (
    AUTH_PREFIX,
    TOKEN_ROUTE,
    ClientIp,
    CurrentAccount,
    CurrentPrincipal,
    CurrentUser,
)
from pagely.identity.errors import (
    EmailTokenExpired,
    InvalidCredentials,
    InvalidEmailToken,
    InvalidRefreshToken,
    LastRoleManager,
    SessionNotFound,
    TokenReused,
    WrongPassword,
)
from pagely.identity.schemas import (
    Accepted,
    ChangePasswordIn,
    EmailIn,
    LogoutIn,
    PasswordIn,
    ProfilePatch,
    RefreshIn,
    RegisterIn,
    ResetPasswordIn,
    SessionOut,
    SigninIn,
    TokenIn,
    TokenPair,
    UserOut,
    VerifyOut,
)
from pagely.settings import Settings

router = APIRouter(prefix=AUTH_PREFIX, tags=["auth"])

LINK_REFUSED = declare(
    InvalidEmailToken, EmailTokenExpired, d400="The link is not valid, or it expired"
)

ACCEPTED = "If this address can receive mail, a message is on its way."
# One URL, a page or JSON by Accept, and an outcome that changes once used: no cache may keep
# one answer for the other kind of client, or for the next click.
NEGOTIATED = {"Vary": "Accept", "Cache-Control": "no-store"}


@router.post(
    "/register",
    operation_id="auth_register",
    dependencies=[PUBLIC],
    summary="Create an account",
    description="Always 202, whether or not the address has an account: a new address "
    "gets a verification email, a known one an email saying someone tried to register.",
    status_code=status.HTTP_202_ACCEPTED,
    responses=declare(RateLimited),
)
async def register(
    body: RegisterIn, ip: ClientIp, session: SessionDep, resources: ResourcesDep
) -> Accepted:
    await service.register(
        session,
        resources.settings,
        resources.limiter,
        ip=ip,
        email=str(body.email),
        password=body.password,
        name=body.name,
    )
    return Accepted(message=ACCEPTED)


def _verify_page(request: Request, state: str, status_code: int) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    # The outcome the page's button hands to the app: `<APP_SCHEME>://verify?status=...`.
    outcomes = {"verified": "ok", "already_verified": "already", "expired": "expired"}
    app_status = outcomes.get(state, "invalid")
    return templates.TemplateResponse(
        request,
        "auth/verify.html",
        {
            "state": state,
            "app_link": f"{settings.app_scheme}://verify?status={app_status}",
            "app_name": settings.app_name,
        },
        status_code=status_code,
    )


@router.get(
    "/verify/{token}",
    operation_id="auth_verify_page",
    dependencies=[PUBLIC],
    summary="Verify an email address (the link in the email)",
    description="The page the link opens: verified, already verified, expired or invalid "
    "(400), with a button that opens the app. A client that asks for JSON (`Accept: "
    "application/json`) gets what `POST /auth/verify` answers: the outcome, or the envelope.",
    response_class=HTMLResponse,
    responses={
        200: {"content": {JSON: {"schema": {"$ref": "#/components/schemas/VerifyOut"}}}},
        # Not declare()'s model: FastAPI would put the envelope under the page's media type.
        400: {
            "description": LINK_REFUSED[400]["description"],
            "x-error-types": LINK_REFUSED[400]["x-error-types"],
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
    },
)
async def verify_page(token: str, request: Request, session: SessionDep) -> Response:
    json = prefers_json(request.headers.get("accept"))
    try:
        outcome = await service.verify_email(session, request.app.state.settings, token)
    except (EmailTokenExpired, InvalidEmailToken) as refused:
        if json:
            refused.headers = {**(refused.headers or {}), **NEGOTIATED}
            raise
        state = "expired" if isinstance(refused, EmailTokenExpired) else "invalid"
        answer: Response = _verify_page(request, state, 400)
    else:
        if json:
            answer = JSONResponse(VerifyOut(status=outcome).model_dump())
        else:
            answer = _verify_page(request, outcome, 200)
    answer.headers.update(NEGOTIATED)
    return answer


@router.post(
    "/verify",
    operation_id="auth_verify",
    dependencies=[PUBLIC],
    summary="Verify an email address (JSON)",
    description="The same check as the link, for the app.",
    responses=LINK_REFUSED,
)
async def verify(body: TokenIn, request: Request, session: SessionDep) -> VerifyOut:
    outcome = await service.verify_email(session, request.app.state.settings, body.token)
    return VerifyOut(status=outcome)


@router.post(
    "/resend-verification",
    operation_id="auth_resend_verification",
    dependencies=[PUBLIC],
    summary="Send the verification email again",
    description="Always 202.",
    status_code=status.HTTP_202_ACCEPTED,
    responses=declare(RateLimited),
)
async def resend_verification(
    body: EmailIn, ip: ClientIp, session: SessionDep, resources: ResourcesDep
) -> Accepted:
    await service.resend_verification(
        session, resources.settings, resources.limiter, ip=ip, email=str(body.email)
    )
    return Accepted(message=ACCEPTED)


async def _signin(
    request: Request,
    ip: str,
    session: SessionDep,
    resources: Resources,
    email: str,
    password: str,
    device: str | None,
    device_id: str | None = None,
) -> TokenPair:
    """The two sign-in routes differ only in how the credentials arrive."""
    return await service.signin(
        session,
        resources.settings,
        resources.limiter,
        email=email,
        password=password,
        device=device,
        device_id=device_id,
        user_agent=request.headers.get("user-agent"),
        ip=ip,
    )


@router.post(
    "/signin",
    operation_id="auth_signin",
    dependencies=[PUBLIC],
    summary="Sign in",
    description="Email and password for an access token (short-lived) and a refresh "
    "token (rotated on every use). Unverified users may sign in and read. Send the app's "
    "`device_id` every time: after repeated wrong passwords the account refuses sign-ins "
    "(429) except from devices that have signed in to it before.",
    responses=declare(InvalidCredentials, RateLimited),
)
async def signin(
    body: SigninIn, request: Request, ip: ClientIp, session: SessionDep, resources: ResourcesDep
) -> TokenPair:
    return await _signin(
        request, ip, session, resources, body.email, body.password, body.device, body.device_id
    )


@router.post(
    TOKEN_ROUTE,
    operation_id="auth_token",
    dependencies=[PUBLIC],
    summary="Sign in (OAuth2 password form)",
    description="The same as signin, as an OAuth2 password form (`username` is the "
    "email), so Swagger's Authorize button works.",
    responses=declare(InvalidCredentials, RateLimited),
)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    ip: ClientIp,
    session: SessionDep,
    resources: ResourcesDep,
) -> TokenPair:
    return await _signin(request, ip, session, resources, form.username, form.password, "swagger")


@router.post(
    "/refresh-token",
    operation_id="auth_refresh",
    dependencies=[PUBLIC],
    summary="Rotate the refresh token",
    description="A new pair, and the session's end slides to now + REFRESH_TOKEN_DAYS (at most "
    "SESSION_MAX_DAYS after sign-in). The presented refresh token is dead from now on, but "
    "presented again within REFRESH_REUSE_GRACE_SECONDS, while the new one is unused, it gets "
    "the same new pair (concurrent refreshes all succeed). Later, it ends the session "
    "(401 `token_reused`).",
    responses=declare(
        InvalidRefreshToken,
        TokenReused,
        RateLimited,
        d401="`invalid_token`: the refresh token is malformed, expired or revoked, sign in again; "
        "`token_reused`: an older refresh token was presented again, the session has ended",
    ),
)
async def refresh_token(body: RefreshIn, resources: ResourcesDep) -> TokenPair:
    return await service.refresh(
        settings=resources.settings,
        limiter=resources.limiter,
        sessionmaker=resources.sessionmaker,
        refresh_token=body.refresh_token,
    )


NO_BODY = LogoutIn()  # the body is optional; a generated client may omit it


@router.post(
    "/logout",
    operation_id="auth_logout",
    summary="Sign out this session",
    description="Revokes this access token and this session's refresh tokens.",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def logout(
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
    body: Annotated[LogoutIn, Body()] = NO_BODY,
) -> Response:
    await service.logout(
        session,
        settings=resources.settings,
        redis=resources.redis,
        principal=principal,
        refresh_token=body.refresh_token,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/logout-all",
    operation_id="auth_logout_all",
    summary="Sign out everywhere",
    description="Ends every session; every access token issued before now is refused.",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def logout_all(user: CurrentUser, session: SessionDep) -> Response:
    await service.logout_everywhere(session, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/me",
    operation_id="auth_me",
    summary="My profile",
    description="The signed-in user: id, email, name, role and whether the email is verified.",
)
async def me(account: CurrentAccount) -> UserOut:
    return UserOut.model_validate(dict(account))


@router.patch(
    "/me",
    operation_id="auth_update_me",
    summary="Update my profile",
    description="Change the display name (trimmed; 1 to 100 characters).",
)
async def update_me(body: ProfilePatch, user: CurrentUser, session: SessionDep) -> UserOut:
    updated = await service.update_profile(session, user, body.name)
    return UserOut.model_validate(updated, from_attributes=True)


@router.delete(
    "/me",
    operation_id="auth_delete_me",
    summary="Delete my account",
    description="Needs the password. Sessions and reviews go with the account; books "
    "stay in the catalog without an owner.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=declare(WrongPassword, LastRoleManager),
)
async def delete_me(body: PasswordIn, user: CurrentUser, session: SessionDep) -> Response:
    await service.delete_account(session, user, body.password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/change-password",
    operation_id="auth_change_password",
    summary="Change my password",
    description="Needs the current password. Ends every other session and emails the "
    "user; answers a fresh token pair for this device.",
    responses=declare(WrongPassword),
)
async def change_password(
    body: ChangePasswordIn,
    principal: CurrentPrincipal,
    session: SessionDep,
    resources: ResourcesDep,
) -> TokenPair:
    return await service.change_password(
        session, resources.settings, principal, body.current_password, body.new_password
    )


@router.post(
    "/forgot-password",
    operation_id="auth_forgot_password",
    dependencies=[PUBLIC],
    summary="Email a password-reset link",
    description="Always 202.",
    status_code=status.HTTP_202_ACCEPTED,
    responses=declare(RateLimited),
)
async def forgot_password(
    body: EmailIn, ip: ClientIp, session: SessionDep, resources: ResourcesDep
) -> Accepted:
    await service.forgot_password(
        session, resources.settings, resources.limiter, ip=ip, email=str(body.email)
    )
    return Accepted(message=ACCEPTED)


@router.get(
    "/reset-password/{token}",
    operation_id="auth_reset_password_page",
    dependencies=[PUBLIC],
    summary="Password-reset form (the link in the email)",
    description="An HTML page with a form that posts to `POST /auth/reset-password`, or a page "
    "explaining that the link expired or is not valid (400).",
    response_class=HTMLResponse,
    responses={
        400: {
            "description": "The link is not valid, or it expired: a page saying so",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    },
)
async def reset_password_page(token: str, request: Request, session: SessionDep) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    state = "form"
    try:
        await service.check_reset_token(session, settings, token)
    except EmailTokenExpired:
        state = "expired"
    except InvalidEmailToken:
        state = "invalid"
    return templates.TemplateResponse(
        request,
        "auth/reset.html",
        {
            "state": state,
            "token": token,
            "app_name": settings.app_name,
            "action": f"{settings.api_prefix}{AUTH_PREFIX}/reset-password",
            "min_length": password_policy.MIN_LENGTH,
            "max_length": password_policy.MAX_LENGTH,
        },
        status_code=200 if state == "form" else 400,
        headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"},
    )


@router.post(
    "/reset-password",
    operation_id="auth_reset_password",
    dependencies=[PUBLIC],
    summary="Set a new password with a reset token",
    description="Tokens expire and work once. Ends every session and emails the user.",
    responses=LINK_REFUSED,
)
async def reset_password(body: ResetPasswordIn, request: Request, session: SessionDep) -> Accepted:
    await service.reset_password(session, request.app.state.settings, body.token, body.new_password)
    return Accepted(message="Your password was changed. Sign in with the new one.")


@router.get(
    "/sessions",
    operation_id="auth_sessions",
    summary="My active sessions",
    description="Signed-in devices, most recently used first; `current` marks this one.",
)
async def sessions(principal: CurrentPrincipal, session: SessionDep) -> list[SessionOut]:
    return await service.open_sessions(session, principal)


@router.delete(
    "/sessions/{session_id}",
    operation_id="auth_revoke_session",
    summary="Sign out one session",
    description="Ends one of my sessions: its refresh token stops working at once.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=declare(SessionNotFound),
)
async def revoke_session(
    session_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    await service.revoke_session(session, principal.user.id, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
