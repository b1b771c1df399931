"""Sign-in sessions and their tokens: issuing a pair, rotating the refresh token, signing out.

A session is one refresh-token family: only its newest refresh token (`refresh_jti`) works,
and presenting an older one is reuse, which ends the family. An access token dies with its
session (checked on every request), by the logout denylist, or when the user's
`token_version` moves on. `pagely.identity.service` is this module's public face."""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pagely.core.clock import clock
from pagely.core.db import transaction
from pagely.core.ratelimit import RateLimiter
from pagely.identity import denylist, queries, tokens
from pagely.identity.errors import InvalidToken, SessionNotFound, TokenReused
from pagely.identity.schemas import Principal, SessionOut, TokenPair, UserOut
from pagely.models.session import AuthSession
from pagely.models.user import User
from pagely.settings import Settings

log = structlog.get_logger("pagely.security")


def _issue_pair(settings: Settings, user: User, auth_session: AuthSession) -> TokenPair:
    access_life = timedelta(minutes=settings.access_token_minutes)
    access, _ = tokens.issue(
        settings,
        token_type="access",  # noqa: S106 - a token kind, not a secret
        user_id=user.id,
        session_id=auth_session.id,
        version=user.token_version,
        lifetime=access_life,
    )
    remaining = auth_session.expires_at - clock.now()
    refresh_token, _ = tokens.issue(
        settings,
        token_type="refresh",  # noqa: S106 - a token kind, not a secret
        user_id=user.id,
        session_id=auth_session.id,
        version=user.token_version,
        lifetime=min(remaining, timedelta(days=settings.refresh_token_days)),
        jti=auth_session.refresh_jti,
    )
    return TokenPair(
        access_token=access,
        refresh_token=refresh_token,
        expires_in=int(access_life.total_seconds()),
        user=UserOut.model_validate(user, from_attributes=True),
    )


async def start_session(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    device: str | None,
    user_agent: str | None,
    ip: str | None,
) -> TokenPair:
    now = clock.now()
    auth_session = await queries.insert_session(
        session,
        user_id=user.id,
        device=device,
        user_agent=(user_agent or "")[:300] or None,
        ip=ip,
        now=now,
        expires_at=now + timedelta(days=settings.refresh_token_days),
    )
    return _issue_pair(settings, user, auth_session)


async def refresh(
    session: AsyncSession,
    *,
    settings: Settings,
    limiter: RateLimiter,
    sessionmaker: async_sessionmaker[AsyncSession],
    refresh_token: str,
) -> TokenPair:
    """Rotate: the presented refresh token must be the family's newest. Of N concurrent
    requests exactly one wins; an older token is reuse and ends the family."""
    try:
        claims = tokens.decode(settings, refresh_token, "refresh")
    except tokens.TokenError:
        raise InvalidToken() from None
    await limiter.hit(
        "refresh_session", settings.rate_limit_refresh_session, str(claims.session_id)
    )
    rotated = await queries.rotate_refresh_jti(
        session,
        session_id=claims.session_id,
        user_id=claims.user_id,
        presented_jti=claims.jti,
        now=clock.now(),
    )
    if rotated is None:
        existing = await queries.session_by_id(session, claims.session_id)
        if (
            existing is not None
            and existing.user_id == claims.user_id
            and existing.revoked_at is None
            and existing.refresh_jti != claims.jti
        ):
            await _revoke_family(sessionmaker, claims.session_id)
            log.warning(
                "authn_token_reuse", user_id=str(claims.user_id), session_id=str(claims.session_id)
            )
            raise TokenReused()
        raise InvalidToken()
    user = await queries.user_by_id(session, claims.user_id)
    if user is None or not user.is_active or user.token_version != claims.version:
        raise InvalidToken()
    return _issue_pair(settings, user, rotated)


async def _revoke_family(
    sessionmaker: async_sessionmaker[AsyncSession], session_id: uuid.UUID
) -> None:
    # Its own transaction: it must stick although the request answers 401 (and rolls back).
    async with transaction(sessionmaker) as own:
        await queries.revoke_family(own, session_id, clock.now())


async def renew_session(
    session: AsyncSession, settings: Settings, user: User, session_id: uuid.UUID
) -> TokenPair:
    """A fresh pair for a session that stays open, every refresh token issued before dead."""
    auth_session = await queries.renew_refresh_jti(session, session_id)
    return _issue_pair(settings, user, auth_session)


async def end_sessions(session: AsyncSession, user: User, *, keep: uuid.UUID | None = None) -> None:
    """Every access token issued before now is refused (token_version, also on `user`), and
    every refresh family but `keep` ends (revoked_at)."""
    await queries.revoke_sessions(session, user.id, clock.now(), keep=keep)
    await queries.bump_token_version(session, user)


async def logout(
    session: AsyncSession,
    *,
    settings: Settings,
    redis: Redis,
    principal: Principal,
    refresh_token: str | None,
) -> None:
    """This access token and this session end; so does the session of `refresh_token`, when
    it is the same user's (a client may hold the pair of another of its sessions)."""
    claims, user_id = principal.claims, principal.user.id
    await denylist.deny(redis, claims.jti, claims.seconds_left)
    await queries.revoke_sessions(session, user_id, clock.now(), only=claims.session_id)
    if refresh_token:
        try:
            other = tokens.decode(settings, refresh_token, "refresh")
        except tokens.TokenError:
            other = None
        if other is not None and other.user_id == user_id:
            await queries.revoke_sessions(session, user_id, clock.now(), only=other.session_id)
    log.info("authn_logout", user_id=str(user_id))


async def logout_everywhere(session: AsyncSession, user: User) -> None:
    await end_sessions(session, user)
    log.info("authn_logout", user_id=str(user.id), everywhere=True)


async def open_sessions(session: AsyncSession, principal: Principal) -> list[SessionOut]:
    """The caller's signed-in devices; `current` marks the one asking."""
    rows = await queries.open_sessions(session, principal.user.id, clock.now())
    return [
        SessionOut(
            id=r.id,
            device=r.device,
            user_agent=r.user_agent,
            ip=r.ip,
            created_at=r.created_at,
            last_used_at=r.last_used_at,
            current=r.id == principal.claims.session_id,
        )
        for r in rows
    ]


async def revoke_session(session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """End one of the user's open sessions; SessionNotFound when it has no such open one."""
    if not await queries.revoke_sessions(session, user_id, clock.now(), only=session_id):
        raise SessionNotFound()
