"""Accounts: registration, verification, sign-in, sessions, passwords, the profile, and their
administration. Services flush; the request's session commits (core.db).

The session lifecycle (token pairs, refresh rotation, sign-out) lives in `_sessions`; what
the routers use of it is re-exported here, so this module is the feature's one service."""

from __future__ import annotations

import functools
import hashlib
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from pagely.core.clock import clock
from pagely.core.db import after_response
from pagely.core.hashing import hash_password, verify_and_update
from pagely.core.outbox import enqueue_email
from pagely.core.ratelimit import RateLimiter
from pagely.identity import queries, tokens
from pagely.identity._sessions import end_sessions, renew_session, start_session

# The session routes' services, re-exported (`as`) so that the routers have one service.
from pagely.identity._sessions import logout as logout
from pagely.identity._sessions import logout_everywhere as logout_everywhere
from pagely.identity._sessions import open_sessions as open_sessions
from pagely.identity._sessions import refresh as refresh
from pagely.identity._sessions import revoke_session as revoke_session
from pagely.identity.errors import (
    EmailTokenExpired,
    InvalidCredentials,
    InvalidEmailToken,
    OwnAccount,
    UserNotFound,
    WrongPassword,
)
from pagely.identity.schemas import Principal, TokenPair, UserAdminPatch
from pagely.models.user import Role, User
from pagely.settings import Settings

log = structlog.get_logger("pagely.security")


def normalise_email(email: str) -> str:
    """The form addresses are compared and stored in (and rate-limited by). NFKC first, so
    that look-alikes (`ada@example.com` in full-width letters) are the same address."""
    return unicodedata.normalize("NFKC", email).lower().strip()


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:24]


@contextmanager
def _email_token_errors() -> Iterator[None]:
    """A verify or reset token that does not load becomes the page's or the API's 400."""
    try:
        yield
    except tokens.ExpiredEmailTokenError:
        raise EmailTokenExpired() from None
    except tokens.TokenError:
        raise InvalidEmailToken() from None


async def _email_limits(limiter: RateLimiter, settings: Settings, ip: str, email: str) -> None:
    """Every route that sends mail to an address someone types in: per caller, per address."""
    await limiter.hit("email_ip", settings.rate_limit_email_ip, ip)
    await limiter.hit("email_account", settings.rate_limit_email_account, normalise_email(email))


# --- registration and verification -------------------------------------------------------


async def register(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    *,
    ip: str,
    email: str,
    password: str,
    name: str,
) -> None:
    """Always the same outcome for the caller; the mailbox owner learns which case it was."""
    await limiter.hit("register_ip", settings.rate_limit_register_ip, ip)
    email = normalise_email(email)
    password_hash = await hash_password(password)  # also for known addresses: flat timing
    user_id = await queries.insert_user(
        session, email=email, name=name, password_hash=password_hash
    )
    if user_id is not None:
        await _send_verification(session, settings, user_id, email, name)
        log.info("user_registered", user_id=str(user_id))
        return
    existing = await queries.user_by_email(session, email)
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


async def _send_verification(
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
    user = await queries.lock_user(session, user_id)
    if user is None or user.email != email:  # bound to the address it was sent to
        raise InvalidEmailToken()
    if user.is_verified:
        return "already_verified"
    await queries.update_user(session, user.id, is_verified=True)
    log.info("user_verified", user_id=str(user.id))
    return "verified"


async def resend_verification(
    session: AsyncSession, settings: Settings, limiter: RateLimiter, *, ip: str, email: str
) -> None:
    """Whether the address has an account must not show in the response time: the lookup and
    the email (its outbox row and dispatch) run once the answer has gone, for every address."""
    await _email_limits(limiter, settings, ip, email)
    address = normalise_email(email)
    after_response(
        session,
        "resend_verification",  # the key is logged on failure: never the address
        functools.partial(_resend_verification, settings, address),
    )


async def _resend_verification(settings: Settings, email: str, session: AsyncSession) -> None:
    user = await queries.user_by_email(session, email)
    if user is not None and user.is_active and not user.is_verified:
        await _send_verification(session, settings, user.id, user.email, user.name)


# --- sign-in -----------------------------------------------------------------------------

_dummy: list[str] = []


async def _dummy_hash() -> str:
    """A real Argon2 hash to verify against for unknown addresses, made once, off the loop."""
    if not _dummy:
        _dummy.append(await hash_password("pagely-timing-equaliser-not-a-password"))
    return _dummy[0]


async def _authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    """The user, or None; an unknown address costs the same Argon2 work as a wrong password."""
    user = await queries.user_by_email(session, normalise_email(email))
    if user is None:
        await verify_and_update(password, await _dummy_hash())
        return None
    ok, new_hash = await verify_and_update(password, user.password_hash)
    if not ok or not user.is_active:
        return None
    if new_hash is not None:  # the hashing parameters changed: upgrade the stored hash
        await queries.update_user(session, user.id, password_hash=new_hash)
    return user


async def signin(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    *,
    email: str,
    password: str,
    device: str | None,
    user_agent: str | None,
    ip: str,
) -> TokenPair:
    account = normalise_email(email)
    await limiter.hit("signin_ip", settings.rate_limit_signin_ip, ip)
    if "\x00" in email or "\x00" in password:  # the form route has no schema to refuse it
        raise InvalidCredentials()
    await limiter.check("signin_account", settings.rate_limit_signin_account, account)
    user = await _authenticate(session, email, password)
    if user is None:
        # Only failures count against the account, so a stranger cannot lock its owner out
        # for long; the IP limit bounds guessing across accounts.
        await limiter.hit("signin_account", settings.rate_limit_signin_account, account)
        log.warning("authn_login_fail", ip=ip)
        raise InvalidCredentials()
    pair = await start_session(session, settings, user, device=device, user_agent=user_agent, ip=ip)
    log.info("authn_login_success", user_id=str(user.id), ip=ip)
    return pair


# --- passwords ---------------------------------------------------------------------------


async def _check_password(user: User, password: str, message: str | None = None) -> None:
    ok, _ = await verify_and_update(password, user.password_hash)
    if not ok:
        raise WrongPassword(message)


async def change_password(
    session: AsyncSession, settings: Settings, principal: Principal, current: str, new: str
) -> TokenPair:
    """This device keeps its session, with fresh tokens; every other session ends, and every
    earlier access token (this device's too) dies."""
    user, this_session = principal.user, principal.claims.session_id
    await _check_password(user, current)
    password_hash = await hash_password(new)
    await end_sessions(session, user, keep=this_session)
    await queries.update_user(session, user.id, password_hash=password_hash)
    pair = await renew_session(session, settings, user, this_session)
    await _password_changed_email(session, user)
    return pair


async def forgot_password(
    session: AsyncSession, settings: Settings, limiter: RateLimiter, *, ip: str, email: str
) -> None:
    """As resend_verification: the answer costs the same for every address."""
    await _email_limits(limiter, settings, ip, email)
    address = normalise_email(email)
    after_response(
        session,
        "forgot_password",  # the key is logged on failure: never the address
        functools.partial(_forgot_password, settings, address),
    )


async def _forgot_password(settings: Settings, email: str, session: AsyncSession) -> None:
    user = await queries.user_by_email(session, email)
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
    user = await queries.lock_user(session, user_id)
    if user is None or not user.is_active:
        raise InvalidEmailToken()
    if not tokens.fingerprint_matches(fingerprint, user.password_hash):
        raise InvalidEmailToken()  # used already (the password changed since)
    return user


async def reset_password(session: AsyncSession, settings: Settings, token: str, new: str) -> None:
    user = await check_reset_token(session, settings, token)
    password_hash = await hash_password(new)
    # The link proved the mailbox is theirs.
    await queries.update_user(session, user.id, password_hash=password_hash, is_verified=True)
    await end_sessions(session, user)
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


# --- my account --------------------------------------------------------------------------


async def update_profile(session: AsyncSession, user: User, name: str) -> User:
    if name != user.name:  # an unchanged name writes nothing (updated_at stays)
        await queries.update_user(session, user.id, name=name)
    return user


async def delete_account(session: AsyncSession, user: User, password: str) -> None:
    await _check_password(user, password, "The password is not correct")
    await queries.delete_user(session, user.id)
    log.info("user_deleted", user_id=str(user.id))


# --- administration ----------------------------------------------------------------------


async def list_users(
    session: AsyncSession,
    *,
    search: str | None,
    role: Role | None,
    is_active: bool | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[User], str | None]:
    if search is not None:  # the look-alike forms of an address find it (normalise_email)
        search = unicodedata.normalize("NFKC", search)
    return await queries.users_page(
        session, search=search, role=role, is_active=is_active, limit=limit, cursor=cursor
    )


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await queries.user_by_id(session, user_id)
    if user is None:
        raise UserNotFound()
    return user


async def update_user(
    session: AsyncSession, admin: User, user_id: uuid.UUID, patch: UserAdminPatch
) -> User:
    """The role takes effect on the user's next request (it is read on every request); a
    deactivation ends every session and refuses every token already issued. Admins cannot
    demote or deactivate themselves, so the last admin cannot lock everyone out."""
    user = await get_user(session, user_id)
    changes = patch.model_dump(exclude_unset=True, exclude_none=True)
    if user.id == admin.id and (
        changes.get("role", user.role) != user.role or changes.get("is_active") is False
    ):
        raise OwnAccount()
    if changes.get("is_active") is False and user.is_active:
        await end_sessions(session, user)
    # Only what differs is written, so a PATCH that changes nothing leaves updated_at alone.
    different = {field: value for field, value in changes.items() if value != getattr(user, field)}
    if different:
        await queries.update_user(session, user.id, **different)
    log.info("user_admin_update", admin_id=str(admin.id), user_id=str(user.id), **changes)
    return user
