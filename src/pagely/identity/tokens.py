"""Access and refresh JWTs (PyJWT, HS256 only) and the single-purpose email tokens
(itsdangerous, one salt per purpose). Every check reads time from `core.clock`."""

from __future__ import annotations

import functools
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from pagely.core.clock import clock
from pagely.settings import Settings

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]
_REQUIRED = ("sub", "jti", "iat", "exp", "type", "sid")
_CLOCK_SKEW_SECONDS = 30


class TokenError(Exception):
    """Any reason a token is not acceptable; callers answer 401 without saying which, except
    `TokenExpiredError`."""


class TokenExpiredError(TokenError):
    """Well signed, the right type, but past its `exp`: an access token's owner refreshes."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    jti: str
    issued_at: int
    expires_at: int
    version: int
    type: TokenType

    @property
    def seconds_left(self) -> int:
        return max(0, self.expires_at - clock.timestamp())


def encode(settings: Settings, claims: TokenClaims) -> str:
    """The signed token of `claims`. Deterministic: the same claims and key always give the
    same bytes, so a pair can be re-issued identically from its stored claims."""
    return jwt.encode(
        {
            "sub": str(claims.user_id),
            "sid": str(claims.session_id),
            "jti": claims.jti,
            "iat": claims.issued_at,
            "exp": claims.expires_at,
            "ver": claims.version,
            "type": claims.type,
        },
        settings.jwt_key(),
        algorithm=ALGORITHM,
    )


@functools.lru_cache(maxsize=4096)
def _verified(token: str, key: str) -> TokenClaims:
    """Signature and claims of a well-formed token. Pure in (token, key), so it is cached: a
    client sends the same access token for up to its lifetime, and verifying it (base64, JSON,
    HMAC) was a measurable part of every authenticated request. Failures raise and are not
    cached. Time is never checked here."""
    try:
        raw = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            # Time is checked by `decode` against core.clock, which tests can move.
            options={"require": list(_REQUIRED), "verify_exp": False, "verify_iat": False},
        )
        return TokenClaims(
            user_id=uuid.UUID(str(raw["sub"])),
            session_id=uuid.UUID(str(raw["sid"])),
            jti=str(raw["jti"]),
            issued_at=int(raw["iat"]),
            expires_at=int(raw["exp"]),
            version=int(raw.get("ver", 0)),
            type=raw["type"],
        )
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        raise TokenError("malformed or badly signed") from None


def decode(settings: Settings, token: str, expected: TokenType) -> TokenClaims:
    """Signature over a fixed algorithm list, every claim present, the right type, and not
    expired or issued in the future by our clock (checked on every call)."""
    claims = _verified(token, settings.jwt_key())
    if claims.type != expected:
        raise TokenError("wrong token type")
    now = clock.timestamp()
    if claims.expires_at <= now:
        raise TokenExpiredError("expired")
    if claims.issued_at > now + _CLOCK_SKEW_SECONDS:
        raise TokenError("issued in the future")
    return claims


# --- email tokens ----------------------------------------------------------------------


class _ClockedSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return clock.timestamp()


_VERIFY_SALT = "pagely.verify-email"
_RESET_SALT = "pagely.reset-password"


def _serializer(settings: Settings, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.jwt_key(), salt=salt, signer=_ClockedSigner)


class ExpiredEmailTokenError(TokenError):
    """An email token that is well signed but older than its purpose allows: unlike the other
    token errors, callers say so (the page offers to send a new link)."""


def make_verify_token(settings: Settings, user_id: uuid.UUID, email: str) -> str:
    return str(_serializer(settings, _VERIFY_SALT).dumps({"uid": str(user_id), "email": email}))


def read_verify_token(settings: Settings, token: str) -> tuple[uuid.UUID, str]:
    data = _load(settings, _VERIFY_SALT, token, settings.verify_token_hours * 3600)
    try:
        return uuid.UUID(data["uid"]), str(data["email"])
    except (KeyError, ValueError, TypeError):
        raise TokenError("malformed") from None


def password_fingerprint(password_hash: str) -> str:
    """Changes whenever the password does, so a reset token dies once it is used."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


def make_reset_token(settings: Settings, user_id: uuid.UUID, password_hash: str) -> str:
    return str(
        _serializer(settings, _RESET_SALT).dumps(
            {"uid": str(user_id), "pfp": password_fingerprint(password_hash)}
        )
    )


def read_reset_token(settings: Settings, token: str) -> tuple[uuid.UUID, str]:
    data = _load(settings, _RESET_SALT, token, settings.reset_token_minutes * 60)
    try:
        return uuid.UUID(data["uid"]), str(data["pfp"])
    except (KeyError, ValueError, TypeError):
        raise TokenError("malformed") from None


def fingerprint_matches(expected: str, password_hash: str) -> bool:
    return hmac.compare_digest(expected, password_fingerprint(password_hash))


def _load(settings: Settings, salt: str, token: str, max_age: int) -> dict[str, Any]:
    try:
        data = _serializer(settings, salt).loads(token, max_age=max_age)
    except SignatureExpired:
        raise ExpiredEmailTokenError("expired") from None
    except BadSignature:
        raise TokenError("invalid") from None
    if not isinstance(data, dict):
        raise TokenError("malformed")
    return data
