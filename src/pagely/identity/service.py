"""Accounts: registration, verification, sign-in, sessions, passwords, the profile, and their
administration. Services flush; the request's session commits (core.db).

The session lifecycle (token pairs, refresh rotation, sign-out) lives in `_sessions`, account
and role administration in `_administration`; what the routers use of them is re-exported
here, so this module is the feature's one service."""

from __future__ import annotations

import functools
import hashlib
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from pagely.core import metrics
from pagely.core.clock import clock
from pagely.core.db import after_response
from pagely.core.hashing import hash_password, verify_and_update
from pagely.core.outbox import enqueue_email
from pagely.core.ratelimit import RateLimiter
from pagely.identity import queries, tokens
from pagely.identity._administration import create_role as create_role
from pagely.identity._administration import delete_own_account
from pagely.identity._administration import delete_role as delete_role
from pagely.identity._administration import get_user as get_user
from pagely.identity._administration import list_permissions as list_permissions
from pagely.identity._administration import list_roles as list_roles
from pagely.identity._administration import list_users as list_users
from pagely.identity._administration import update_role as update_role
from pagely.identity._administration import update_user as update_user
from pagely.identity._sessions import end_sessions, renew_session, start_session

# The session and administration routes' services, re-exported (`as`) so that the routers
# have one service.
from pagely.identity._sessions import logout as logout
from pagely.identity._sessions import logout_everywhere as logout_everywhere
from pagely.identity._sessions import open_sessions as open_sessions
from pagely.identity._sessions import refresh as refresh
from pagely.identity._sessions import revoke_session as revoke_session
from pagely.identity.errors import (
    EmailTokenExpired,
    InvalidCredentials,
    InvalidEmailToken,
    WrongPassword,
)
from pagely.identity.schemas import Principal, TokenPair
from pagely.models.user import User
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
    device_id: str | None,
    user_agent: str | None,
    ip: str,
) -> TokenPair:
    """Guessing is bounded three ways: per address (every attempt), per account (failures
    only) and, for a device that has signed in to the account before, per account and device
    instead of per account. So strangers' failures, however many and from wherever, lock the
    account for strangers only: its owner's known device still gets in, and guessing from
    that device is bounded by its own limit."""
    account = normalise_email(email)
    await limiter.hit("signin_ip", settings.rate_limit_signin_ip, ip)
    if "\x00" in email or "\x00" in password:  # the form route has no schema to refuse it
        raise InvalidCredentials()
    device_key = _device_key(device_id)
    since = clock.now() - timedelta(days=settings.session_max_days)
    limit: tuple[str, ...]
    if device_key is not None and await queries.device_known(session, account, device_key, since):
        limit = ("signin_device", settings.rate_limit_signin_device, account, device_key)
    else:
        limit = ("signin_account", settings.rate_limit_signin_account, account)
    await limiter.check(*limit)
    user = await _authenticate(session, email, password)
    if user is None:
        # Only failures count, so a stranger cannot lock the owner out for long; the address
        # limit bounds guessing across accounts.
        metrics.SIGNIN_FAILURES.inc()  # first: the failure that trips the limit counts too
        await limiter.hit(*limit)
        log.warning("authn_login_fail", ip=ip, known_device=limit[0] == "signin_device")
        raise InvalidCredentials()
    pair = await start_session(session, settings, user, device=device, device_key=device_key,
                               user_agent=user_agent, ip=ip)  # fmt: skip
    log.info("authn_login_success", user_id=str(user.id), ip=ip)
    return pair


def _device_key(device_id: str | None) -> str | None:
    """What is stored of a device id: its hash (a leaked table names no device)."""
    if device_id is None:
        return None
    return hashlib.sha256(device_id.encode()).hexdigest()


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
    await delete_own_account(session, user)
    log.info("user_deleted", user_id=str(user.id))
