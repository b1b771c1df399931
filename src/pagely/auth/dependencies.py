"""Who is calling: `CurrentUser`, `VerifiedUser`, `AdminUser`, and `RequireRoles(...)` for any
set of roles. One PostgreSQL query (user and session) and one Redis call (the jti denylist),
concurrently, per authenticated request. Redis down means 503, never a pass."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from redis.asyncio import Redis
from sqlalchemy import select
from sqlmodel import col

from pagely.auth import tokens
from pagely.core.db import SessionDep
from pagely.core.errors import Forbidden, Unauthorized
from pagely.models.session import AuthSession
from pagely.models.user import Role, User
from pagely.settings import Settings

log = structlog.get_logger("pagely.security")

# Declares the bearer scheme in OpenAPI; Swagger's Authorize button signs in through the form.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)

DENYLIST_PREFIX = "pagely:denylist:jti:"


class InvalidToken(Unauthorized):
    type, message = "invalid_token", "The access token is missing, invalid, expired or revoked"

    def __init__(self) -> None:
        super().__init__(headers={"WWW-Authenticate": "Bearer"})


class EmailNotVerified(Forbidden):
    type, message = "email_not_verified", "Verify your email address first"


@dataclass(frozen=True)
class Principal:
    user: User
    claims: tokens.TokenClaims


async def _is_denied(redis: Redis, jti: str) -> bool:
    return bool(await redis.exists(DENYLIST_PREFIX + jti))


async def _load(session: Any, claims: tokens.TokenClaims) -> tuple[User, Any] | None:
    row = (
        await session.execute(
            select(User, col(AuthSession.revoked_at))
            .join(AuthSession, col(AuthSession.user_id) == col(User.id))
            .where(col(User.id) == claims.user_id, col(AuthSession.id) == claims.session_id)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def current_principal(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    if not token:
        raise InvalidToken()
    settings: Settings = request.app.state.settings
    try:
        claims = tokens.decode(settings, token, "access")
    except tokens.TokenError as exc:
        log.info("authn_token_rejected", reason=str(exc))
        raise InvalidToken() from None
    redis: Redis = request.app.state.resources.redis
    # Both at once; return_exceptions so a failing Redis never abandons the query while it
    # still holds the session (the error is raised once both are done: 503 from the handlers).
    denied, loaded = await asyncio.gather(
        _is_denied(redis, claims.jti), _load(session, claims), return_exceptions=True
    )
    for outcome in (denied, loaded):
        if isinstance(outcome, BaseException):
            raise outcome
    assert not isinstance(loaded, BaseException)
    if denied or loaded is None:
        log.info("authn_token_rejected", reason="revoked" if denied else "unknown session")
        raise InvalidToken()
    user, revoked_at = loaded
    if revoked_at is not None or not user.is_active or user.token_version != claims.version:
        log.info("authn_token_rejected", reason="session ended", user_id=str(user.id))
        raise InvalidToken()
    request.scope.setdefault("state", {})["user_id"] = str(user.id)
    return Principal(user, claims)


async def current_user(principal: Annotated[Principal, Depends(current_principal)]) -> User:
    return principal.user


async def verified_user(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_verified:
        raise EmailNotVerified()
    return user


def RequireRoles(*roles: Role) -> Any:  # noqa: N802 - reads as a type in signatures
    """A dependency admitting users with any of `roles`: `Annotated[User, RequireRoles(...)]`."""
    allowed = frozenset(roles)

    async def require(request: Request, user: Annotated[User, Depends(current_user)]) -> User:
        if user.role not in allowed:
            log.warning("authz_fail", user_id=str(user.id), path=request.url.path, role=user.role)
            raise Forbidden()
        return user

    return Depends(require)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
CurrentUser = Annotated[User, Depends(current_user)]
VerifiedUser = Annotated[User, Depends(verified_user)]
AdminUser = Annotated[User, RequireRoles(Role.admin)]
ModeratorUser = Annotated[User, RequireRoles(Role.moderator, Role.admin)]
