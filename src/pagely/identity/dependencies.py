"""Who is calling, and what they may do: `CurrentUser`, `VerifiedUser`, `RequirePermission(p)`
and `OwnerOr(p)`. One PostgreSQL query (user, session and role) and one Redis call (the jti
denylist), concurrently, per authenticated request, so a role or permission change takes effect
on the caller's next request. Redis down means 503, never a pass. Each of these declares the
access it enforces (`pagely.identity.access`).

`CurrentAccount` makes the same checks for routes that only read the caller's own row, without
a session; `OptionalReader` is the lighter check of public reads. `ClientIp` is the caller's
address, as rate limits count it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Any, TypeVar, cast

import structlog
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from fastapi.security.utils import get_authorization_scheme_param
from redis.asyncio import Redis
from sqlalchemy import RowMapping

from pagely.core.clientip import client_ip
from pagely.core.db import SessionDep, reading
from pagely.identity import denylist, permissions, queries, tokens
from pagely.identity.access import Access, Level, declares
from pagely.identity.errors import (
    AccessTokenExpired,
    EmailNotVerified,
    InvalidToken,
    MissingPermission,
)
from pagely.identity.permissions import Permission
from pagely.identity.schemas import Actor, Principal
from pagely.models.user import User
from pagely.settings import Settings

log = structlog.get_logger("pagely.security")

# The OAuth2 password form, which Swagger's Authorize button posts to: the /token route of the
# /auth router, below the API prefix. The prefix is a setting, unknown here, so the scheme is
# declared with the path alone and pagely.web.openapi documents `api_prefix + TOKEN_PATH`.
AUTH_PREFIX = "/auth"
TOKEN_ROUTE = "/token"  # noqa: S105 - a path, not a secret
TOKEN_PATH = AUTH_PREFIX + TOKEN_ROUTE
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_PATH, auto_error=False)

T = TypeVar("T")


def bearer_token(authorization: str) -> str | None:
    """The token of an Authorization header value, read as `oauth2_scheme` reads it (None for
    another scheme): the fast path in front of the routes reads headers with this."""
    scheme, token = get_authorization_scheme_param(authorization)
    return token if scheme.lower() == "bearer" and token else None


def _claims(request: Request, token: str | None) -> tokens.TokenClaims:
    if not token:
        raise InvalidToken()
    settings: Settings = request.app.state.settings
    try:
        return tokens.decode(settings, token, "access")
    except tokens.TokenExpiredError:
        # Genuine but old: the app refreshes (token_expired), unlike every other failure,
        # after which it signs in again (invalid_token).
        log.info("authn_token_rejected", reason="expired")
        raise AccessTokenExpired() from None
    except tokens.TokenError as exc:
        log.info("authn_token_rejected", reason=str(exc))
        raise InvalidToken() from None


async def _denied_and(redis: Redis, claims: tokens.TokenClaims, load: Awaitable[T]) -> T:
    """The denylist check and `load` at once; raises InvalidToken when the jti is denied.

    return_exceptions, so a failing Redis never abandons the query while it still holds the
    connection (the error is raised once both are done: 503 from the handlers)."""
    denied, loaded = await asyncio.gather(
        denylist.is_denied(redis, claims.jti), load, return_exceptions=True
    )
    for outcome in (denied, loaded):
        if isinstance(outcome, BaseException):
            raise outcome
    if denied:
        log.info("authn_token_rejected", reason="revoked")
        raise InvalidToken()
    return cast(T, loaded)


def _admit(
    request: Request,
    claims: tokens.TokenClaims,
    account: tuple[bool, int, datetime | None] | None,
) -> None:
    """`account` is (user active, user's token version, session revoked_at), None when the
    user or session is gone. The session must be open, the user active, the version current."""
    if account is None:
        log.info("authn_token_rejected", reason="unknown session")
        raise InvalidToken()
    active, version, revoked_at = account
    if revoked_at is not None or not active or version != claims.version:
        log.info("authn_token_rejected", reason="session ended", user_id=str(claims.user_id))
        raise InvalidToken()
    request.scope.setdefault("state", {})["user_id"] = str(claims.user_id)


@declares(Access(Level.signed_in))
async def current_principal(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    claims = _claims(request, token)
    load = queries.user_session_and_role(session, claims.user_id, claims.session_id)
    loaded = await _denied_and(request.app.state.resources.redis, claims, load)
    if loaded is None:
        _admit(request, claims, None)
    assert loaded is not None
    user, revoked_at, stored = loaded
    _admit(request, claims, (user.is_active, user.token_version, revoked_at))
    return Principal(user, claims, permissions.of_role(user.role, stored))


@declares(Access(Level.signed_in))
async def current_account(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> RowMapping:
    """The same checks as `current_principal`, for routes that only read the caller's own row:
    one statement on an autocommit connection instead of a session's transaction (a third of
    the round trips), and a row instead of an ORM object."""
    claims = _claims(request, token)
    engine = request.app.state.resources.engine

    async def load() -> RowMapping | None:
        async with reading(engine) as conn:
            return await queries.account_and_session_revoked_at(
                conn, claims.user_id, claims.session_id
            )

    row = await _denied_and(request.app.state.resources.redis, claims, load())
    if row is None:
        _admit(request, claims, None)
    assert row is not None
    _admit(request, claims, (row["is_active"], row["token_version"], row["revoked_at"]))
    return row


@declares(Access(Level.public))
async def optional_reader(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> tokens.TokenClaims | None:
    """For public reads: no token is fine, but a token that is sent must be well signed,
    unexpired, an access token and not logged out (else 401, so a client learns at once that
    its token is dead). Whether its session is still open is checked, with the database, by
    the routes that act as the user; a public read reveals nothing a token would protect."""
    if not token:
        return None
    claims = _claims(request, token)
    if await denylist.is_denied(request.app.state.resources.redis, claims.jti):
        log.info("authn_token_rejected", reason="revoked")
        raise InvalidToken()
    request.scope.setdefault("state", {})["user_id"] = str(claims.user_id)
    return claims


async def client_address(request: Request) -> str:
    """The caller's address, as rate limits and the security log count it."""
    settings: Settings = request.app.state.settings
    return client_ip(request, settings.trusted_proxies)


async def current_user(principal: Annotated[Principal, Depends(current_principal)]) -> User:
    return principal.user


@declares(Access(Level.verified))
async def verified_user(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_verified:
        raise EmailNotVerified()
    return user


def _refuse(request: Request, principal: Principal, permission: Permission) -> None:
    user = principal.user
    log.warning(
        "authz_fail",
        user_id=str(user.id),
        role=user.role,
        permission=str(permission),
        method=request.method,
        path=request.url.path,
    )
    raise MissingPermission(permission)


def RequirePermission(permission: Permission) -> Any:  # noqa: N802 - reads as a type
    """Admits callers whose role grants `permission`: `Annotated[Principal, Require...(p)]`."""

    @declares(Access(Level.permission, permission))
    async def require(
        request: Request, principal: Annotated[Principal, Depends(current_principal)]
    ) -> Principal:
        if permission not in principal.permissions:
            _refuse(request, principal, permission)
        return principal

    return Depends(require)


def OwnerOr(permission: Permission) -> Any:  # noqa: N802 - reads as a type
    """Admits verified callers as an `Actor`: the service lets them change what they own, and
    anything when their role grants `permission` (403 otherwise, from the service)."""

    @declares(Access(Level.owner_or, permission))
    async def actor(
        principal: Annotated[Principal, Depends(current_principal)],
        _: Annotated[User, Depends(verified_user)],  # the same principal, checked verified
    ) -> Actor:
        return Actor(principal.user, permission, permission in principal.permissions)

    return Depends(actor)


# For routes taking OptionalReader, as `openapi_extra`: FastAPI appends it to the bearer
# requirement it declares, giving OpenAPI's "a bearer token, or none": [{bearer}, {}].
OPTIONAL_BEARER: dict[str, Any] = {"security": [{}]}
ClientIp = Annotated[str, Depends(client_address)]
OptionalReader = Annotated[tokens.TokenClaims | None, Depends(optional_reader)]
CurrentAccount = Annotated[RowMapping, Depends(current_account)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
CurrentUser = Annotated[User, Depends(current_user)]
VerifiedUser = Annotated[User, Depends(verified_user)]
UsersManager = Annotated[Principal, RequirePermission(Permission.users_manage)]
RolesManager = Annotated[Principal, RequirePermission(Permission.roles_manage)]
OutboxManager = Annotated[Principal, RequirePermission(Permission.outbox_manage)]
ReviewModerator = Annotated[Principal, RequirePermission(Permission.reviews_moderate)]
BookEditor = Annotated[Actor, OwnerOr(Permission.books_write_any)]
BookRemover = Annotated[Actor, OwnerOr(Permission.books_delete_any)]
