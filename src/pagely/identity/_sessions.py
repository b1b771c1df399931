"""Sign-in sessions and their tokens: issuing a pair, rotating the refresh token, signing out.

A session is one refresh-token family: only its newest refresh token (`refresh_jti`) works,
and presenting an older one is reuse, which ends the family, with one exception (the grace
window, `refresh`). Each refresh slides the session's end to now + REFRESH_TOKEN_DAYS, never
past `max_expires_at` (sign-in + SESSION_MAX_DAYS). An access token dies with its session
(checked on every request), by the logout denylist, or when the user's `token_version` moves
on. `pagely.identity.service` is this module's public face."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pagely.core.clock import clock
from pagely.core.db import transaction
from pagely.core.ratelimit import RateLimiter
from pagely.identity import denylist, queries, tokens
from pagely.identity.errors import InvalidRefreshToken, SessionNotFound, TokenReused
from pagely.identity.schemas import Principal, SessionOut, TokenPair, UserOut
from pagely.models.session import AuthSession
from pagely.models.user import User
from pagely.settings import Settings

log = structlog.get_logger("pagely.security")


def _successor(
    settings: Settings, user: User, *, now: datetime, refresh_expires_at: datetime
) -> dict[str, Any]:
    """The claims of a new pair that the refresh token's own jti and the session do not
    already hold: what `_pair` needs to encode it, now or again later (stored, never a token)."""
    issued_at = int(now.timestamp())
    return {
        "iat": issued_at,
        "access_jti": uuid.uuid4().hex,
        "access_exp": issued_at + settings.access_token_minutes * 60,
        "refresh_exp": int(refresh_expires_at.timestamp()),
        "ver": user.token_version,
    }


def _pair(
    settings: Settings, user: User, auth_session: AuthSession, successor: dict[str, Any]
) -> TokenPair:
    """The pair `successor` describes, with the session's newest refresh jti. Deterministic:
    the same claims give the same tokens, byte for byte."""
    issued_at, version = int(successor["iat"]), int(successor["ver"])

    def claims(kind: tokens.TokenType, jti: str, expires_at: int) -> tokens.TokenClaims:
        return tokens.TokenClaims(
            user_id=user.id,
            session_id=auth_session.id,
            jti=jti,
            issued_at=issued_at,
            expires_at=expires_at,
            version=version,
            type=kind,
        )

    access_exp = int(successor["access_exp"])
    return TokenPair(
        access_token=tokens.encode(settings, claims("access", successor["access_jti"], access_exp)),
        refresh_token=tokens.encode(
            settings, claims("refresh", auth_session.refresh_jti, int(successor["refresh_exp"]))
        ),
        expires_in=access_exp - issued_at,
        user=UserOut.model_validate(user, from_attributes=True),
    )


def _issue_pair(settings: Settings, user: User, auth_session: AuthSession) -> TokenPair:
    """A pair for the session as it is (its newest refresh jti, its end)."""
    successor = _successor(
        settings, user, now=clock.now(), refresh_expires_at=auth_session.expires_at
    )
    return _pair(settings, user, auth_session, successor)


async def start_session(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    device: str | None,
    device_key: str | None,
    user_agent: str | None,
    ip: str | None,
) -> TokenPair:
    now = clock.now()
    max_expires_at = now + timedelta(days=settings.session_max_days)
    auth_session = await queries.insert_session(
        session,
        user_id=user.id,
        device=device,
        device_key=device_key,
        user_agent=(user_agent or "")[:300] or None,
        ip=ip,
        now=now,
        expires_at=min(now + timedelta(days=settings.refresh_token_days), max_expires_at),
        max_expires_at=max_expires_at,
    )
    return _issue_pair(settings, user, auth_session)


async def refresh(
    *,
    settings: Settings,
    limiter: RateLimiter,
    sessionmaker: async_sessionmaker[AsyncSession],
    refresh_token: str,
) -> TokenPair:
    """Rotate: the presented refresh token must be the family's newest, or the one rotated
    last within REFRESH_REUSE_GRACE_SECONDS (while its successor is unused), which gets that
    same successor pair again, byte for byte: an app whose concurrent requests all got 401
    sends one refresh token several times at once, and every one of them gets a working pair.
    Any other older token is reuse, and ends the family (401 token_reused).

    The whole decision runs in a transaction of its own, not the request's (which this route
    leaves unused), holding the session row's lock (SELECT ... FOR UPDATE) from the first
    read: concurrent refreshes of one family take turns, the first rotates and commits, the
    others then see its rotation and replay it. A revocation commits in that transaction
    before the 401 is raised, so it sticks, and no statement ever waits on a lock its own
    request holds (the old design revoked on a second connection while the request's
    transaction held the row: a deadlock PostgreSQL could not see).

    A token that is expired, malformed, of a revoked or ended family, of a deactivated user,
    or older than the user's token_version (issued before a password change or logout-all)
    is merely invalid: nothing is written, no family is touched."""
    try:
        claims = tokens.decode(settings, refresh_token, "refresh")
    except tokens.TokenError:
        raise InvalidRefreshToken() from None
    await limiter.hit(
        "refresh_session", settings.rate_limit_refresh_session, str(claims.session_id)
    )
    async with transaction(sessionmaker) as own:
        pair = await _rotate_or_replay(own, settings, claims)
    if pair is None:  # reuse: the family's revocation is committed
        log.warning(
            "authn_token_reuse", user_id=str(claims.user_id), session_id=str(claims.session_id)
        )
        raise TokenReused()
    return pair


async def _rotate_or_replay(
    own: AsyncSession, settings: Settings, claims: tokens.TokenClaims
) -> TokenPair | None:
    """A pair, or None once the family is revoked for reuse (raises InvalidRefreshToken for a
    token that is simply dead, writing nothing)."""
    row = await queries.lock_session(own, claims.session_id)
    now = clock.now()  # after the lock: a refresh that waited for another judges by now
    if (
        row is None
        or row.user_id != claims.user_id
        or row.revoked_at is not None
        or row.expires_at <= now
    ):
        raise InvalidRefreshToken()
    user = await queries.user_by_id(own, claims.user_id)
    if user is None or not user.is_active or user.token_version != claims.version:
        raise InvalidRefreshToken()
    if claims.jti == row.refresh_jti:
        expires_at = min(now + timedelta(days=settings.refresh_token_days), row.max_expires_at)
        successor = _successor(settings, user, now=now, refresh_expires_at=expires_at)
        rotated = await queries.rotate_session(
            own,
            row.id,
            refresh_jti=uuid.uuid4().hex,
            previous_jti=row.refresh_jti,
            now=now,
            expires_at=expires_at,
            successor=successor,
        )
        return _pair(settings, user, rotated, successor)
    grace = timedelta(seconds=settings.refresh_reuse_grace_seconds)
    if (
        claims.jti == row.previous_jti  # its successor is the newest: unused so far
        and row.rotated_at is not None
        and now - row.rotated_at <= grace
        and row.successor is not None
        and row.successor.get("ver") == user.token_version
    ):
        log.info("authn_refresh_replayed", user_id=str(user.id), session_id=str(row.id))
        return _pair(settings, user, row, row.successor)
    await queries.revoke_family(own, row.id, now)
    return None


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
            expires_at=r.expires_at,
            max_expires_at=r.max_expires_at,
            current=r.id == principal.claims.session_id,
        )
        for r in rows
    ]


async def revoke_session(session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """End one of the user's open sessions; SessionNotFound when it has no such open one."""
    if not await queries.revoke_sessions(session, user_id, clock.now(), only=session_id):
        raise SessionNotFound()
