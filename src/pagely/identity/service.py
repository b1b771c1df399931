"""Accounts: registration, verification, sign-in, the refresh-token lifecycle, passwords and
sessions. Services flush; the request's session commits (core.db)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Literal

import structlog
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from pagely.core.clock import clock
from pagely.core.db import transaction
from pagely.core.errors import AppError, Unauthorized
from pagely.core.hashing import hash_password, verify_and_update
from pagely.core.outbox import enqueue_email
from pagely.core.resources import Resources
from pagely.identity import tokens
from pagely.identity.dependencies import DENYLIST_PREFIX, InvalidToken, Principal
from pagely.identity.schemas import TokenPair, UserOut
from pagely.models.session import AuthSession
from pagely.models.user import User
from pagely.settings import Settings

log = structlog.get_logger("pagely.security")


class InvalidCredentials(Unauthorized):
    type, message = "invalid_credentials", "Wrong email or password"


class TokenReused(Unauthorized):
    type, message = "token_reused", "This refresh token was already used; the session has ended"


class InvalidEmailToken(AppError):
    status_code, type, message = 400, "invalid_token", "This link is not valid"


class EmailTokenExpired(AppError):
    status_code, type, message = 400, "token_expired", "This link has expired; ask for a new one"


class WrongPassword(AppError):
    status_code, type, message = 400, "invalid_password", "The current password is not correct"


@contextmanager
def _email_token_errors() -> Iterator[None]:
    """A verify or reset token that does not load becomes the page's or the API's 400."""
    try:
        yield
    except tokens.EmailTokenExpired:
        raise EmailTokenExpired() from None
    except tokens.TokenError:
        raise InvalidEmailToken() from None


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:24]


_dummy: list[str] = []


async def _dummy_hash() -> str:
    """A real Argon2 hash to verify against for unknown addresses, made once, off the loop."""
    if not _dummy:
        _dummy.append(await hash_password("pagely-timing-equaliser-not-a-password"))
    return _dummy[0]


async def _user_by_email(session: AsyncSession, email: str) -> User | None:
    return (
        await session.execute(select(User).where(col(User.email) == normalise_email(email)))
    ).scalar_one_or_none()


# --- registration and verification -------------------------------------------------------


async def register(
    session: AsyncSession, settings: Settings, email: str, password: str, name: str
) -> None:
    """Always the same outcome for the caller; the mailbox owner learns which case it was."""
    email = normalise_email(email)
    password_hash = await hash_password(password)  # also for known addresses: flat timing
    user_id = (
        await session.execute(
            insert(User)
            .values(
                id=uuid.uuid4(),
                email=email,
                name=name,
                password_hash=password_hash,
                role="user",
                is_verified=False,
                is_active=True,
                token_version=0,
            )
            .on_conflict_do_nothing(index_elements=["email"])
            .returning(col(User.id))
        )
    ).scalar_one_or_none()
    if user_id is not None:
        await send_verification(session, settings, user_id, email, name)
        log.info("user_registered", user_id=str(user_id))
        return
    existing = await _user_by_email(session, email)
    if existing is None or not existing.is_active:
        return
    reset = tokens.make_reset_token(settings, existing.id, existing.password_hash)
    bucket = clock.timestamp() // 3600  # at most one such email per hour
    await enqueue_email(
        session,
        template="account_exists",
        to=existing.email,
        context={
            "name": existing.name,
            "reset_token": reset,
            "valid_minutes": settings.reset_token_minutes,
        },
        key=f"account_exists:{existing.id}:{bucket}",
    )


async def send_verification(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, email: str, name: str
) -> None:
    token = tokens.make_verify_token(settings, user_id, email)
    await enqueue_email(
        session,
        template="verify_email",
        to=email,
        context={"name": name, "token": token, "valid_hours": settings.verify_token_hours},
        key=f"verify:{user_id}:{_token_key(token)}",
    )


async def verify_email(
    session: AsyncSession, settings: Settings, token: str
) -> Literal["verified", "already_verified"]:
    with _email_token_errors():
        user_id, email = tokens.read_verify_token(settings, token)
    user = await session.get(User, user_id, with_for_update=True)
    if user is None or user.email != email:  # bound to the address it was sent to
        raise InvalidEmailToken()
    if user.is_verified:
        return "already_verified"
    user.is_verified = True
    await session.flush()
    log.info("user_verified", user_id=str(user.id))
    return "verified"


async def resend_verification(session: AsyncSession, settings: Settings, email: str) -> None:
    user = await _user_by_email(session, email)
    if user is not None and user.is_active and not user.is_verified:
        await send_verification(session, settings, user.id, user.email, user.name)


# --- sign-in and tokens ------------------------------------------------------------------


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    """The user, or None; an unknown address costs the same Argon2 work as a wrong password."""
    user = await _user_by_email(session, email)
    if user is None:
        await verify_and_update(password, await _dummy_hash())
        return None
    ok, new_hash = await verify_and_update(password, user.password_hash)
    if not ok or not user.is_active:
        return None
    if new_hash is not None:  # the hashing parameters changed: upgrade the stored hash
        user.password_hash = new_hash
    return user


def issue_pair(settings: Settings, user: User, auth_session: AuthSession) -> TokenPair:
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
    refresh, _ = tokens.issue(
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
        refresh_token=refresh,
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
    auth_session = AuthSession(
        user_id=user.id,
        refresh_jti=uuid.uuid4().hex,
        device=device,
        user_agent=(user_agent or "")[:300] or None,
        ip=ip,
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(days=settings.refresh_token_days),
    )
    session.add(auth_session)
    await session.flush()
    return issue_pair(settings, user, auth_session)


async def refresh(
    session: AsyncSession, resources: Resources, claims: tokens.TokenClaims
) -> TokenPair:
    """Rotate: the presented refresh token must be the family's newest. The swap is one
    conditional UPDATE, so of N concurrent requests exactly one wins; an older token is reuse
    and ends the family."""
    settings = resources.settings
    now = clock.now()
    rotated = (
        await session.execute(
            update(AuthSession)
            .where(
                col(AuthSession.id) == claims.session_id,
                col(AuthSession.user_id) == claims.user_id,
                col(AuthSession.refresh_jti) == claims.jti,
                col(AuthSession.revoked_at).is_(None),
                col(AuthSession.expires_at) > now,
            )
            .values(refresh_jti=uuid.uuid4().hex, last_used_at=now)
            .returning(AuthSession)
        )
    ).scalar_one_or_none()
    if rotated is None:
        existing = await session.get(AuthSession, claims.session_id)
        if (
            existing is not None
            and existing.user_id == claims.user_id
            and existing.revoked_at is None
            and existing.refresh_jti != claims.jti
        ):
            await _revoke_family(resources.sessionmaker, claims.session_id)
            log.warning(
                "authn_token_reuse", user_id=str(claims.user_id), session_id=str(claims.session_id)
            )
            raise TokenReused()
        raise InvalidToken()
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active or user.token_version != claims.version:
        raise InvalidToken()
    return issue_pair(settings, user, rotated)


async def _revoke_family(
    sessionmaker: async_sessionmaker[AsyncSession], session_id: uuid.UUID
) -> None:
    # Its own transaction: it must stick although the request answers 401 (and rolls back).
    async with transaction(sessionmaker) as own:
        await own.execute(
            update(AuthSession)
            .where(col(AuthSession.id) == session_id, col(AuthSession.revoked_at).is_(None))
            .values(revoked_at=clock.now())
        )


async def revoke_sessions(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    keep: uuid.UUID | None = None,
    only: uuid.UUID | None = None,
) -> int:
    query = update(AuthSession).where(
        col(AuthSession.user_id) == user_id, col(AuthSession.revoked_at).is_(None)
    )
    if keep is not None:
        query = query.where(col(AuthSession.id) != keep)
    if only is not None:
        query = query.where(col(AuthSession.id) == only)
    result = await session.execute(query.values(revoked_at=clock.now()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def logout(
    session: AsyncSession, resources: Resources, principal: Principal, refresh_token: str | None
) -> None:
    claims = principal.claims
    await resources.redis.set(DENYLIST_PREFIX + claims.jti, "1", ex=max(1, claims.seconds_left))
    await revoke_sessions(session, principal.user.id, only=claims.session_id)
    if refresh_token:
        try:
            other = tokens.decode(resources.settings, refresh_token, "refresh")
        except tokens.TokenError:
            other = None
        if other is not None and other.user_id == principal.user.id:
            await revoke_sessions(session, principal.user.id, only=other.session_id)
    log.info("authn_logout", user_id=str(principal.user.id))


async def end_all_sessions(session: AsyncSession, user: User) -> None:
    """Every access token issued before now is refused (token_version), every refresh
    family ends (revoked_at)."""
    user.token_version += 1
    await revoke_sessions(session, user.id)
    await session.flush()


# --- passwords ---------------------------------------------------------------------------


async def check_password(user: User, password: str, message: str | None = None) -> None:
    ok, _ = await verify_and_update(password, user.password_hash)
    if not ok:
        raise WrongPassword(message)


async def change_password(
    session: AsyncSession, settings: Settings, principal: Principal, current: str, new: str
) -> TokenPair:
    user = principal.user
    await check_password(user, current)
    user.password_hash = await hash_password(new)
    # Every earlier access token dies (version); this device keeps its session, with fresh
    # tokens, and every other session ends.
    user.token_version += 1
    await revoke_sessions(session, user.id, keep=principal.claims.session_id)
    auth_session = await session.get(AuthSession, principal.claims.session_id)
    assert auth_session is not None
    auth_session.refresh_jti = uuid.uuid4().hex
    await session.flush()
    await _password_changed_email(session, user)
    return issue_pair(settings, user, auth_session)


async def forgot_password(session: AsyncSession, settings: Settings, email: str) -> None:
    user = await _user_by_email(session, email)
    if user is None or not user.is_active:
        return
    token = tokens.make_reset_token(settings, user.id, user.password_hash)
    await enqueue_email(
        session,
        template="password_reset",
        to=user.email,
        context={"name": user.name, "token": token, "valid_minutes": settings.reset_token_minutes},
        key=f"reset:{user.id}:{_token_key(token)}",
    )


async def check_reset_token(session: AsyncSession, settings: Settings, token: str) -> User:
    with _email_token_errors():
        user_id, fingerprint = tokens.read_reset_token(settings, token)
    user = await session.get(User, user_id, with_for_update=True)
    if user is None or not user.is_active:
        raise InvalidEmailToken()
    if not tokens.fingerprint_matches(fingerprint, user.password_hash):
        raise InvalidEmailToken()  # used already (the password changed since)
    return user


async def reset_password(session: AsyncSession, settings: Settings, token: str, new: str) -> None:
    user = await check_reset_token(session, settings, token)
    user.password_hash = await hash_password(new)
    user.is_verified = True  # the link proved the mailbox is theirs
    await end_all_sessions(session, user)
    await _password_changed_email(session, user)
    log.info("authn_password_reset", user_id=str(user.id))


async def _password_changed_email(session: AsyncSession, user: User) -> None:
    await enqueue_email(
        session,
        template="password_changed",
        to=user.email,
        context={"name": user.name},
        key=f"password_changed:{user.id}:{user.token_version}",
    )
