"""Request and response bodies of identity, and the Principal: who is calling."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, EmailStr, Field, StringConstraints, field_validator

from pagely.core.schemas import Strict, omit_null
from pagely.identity.password_policy import MAX_LENGTH, password_problem
from pagely.identity.permissions import Permission
from pagely.identity.tokens import TokenClaims
from pagely.models.user import User

RoleName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_-]{1,39}$"),
    Field(
        description="A role: `user`, `moderator`, `admin` or a custom one (2-40 of a-z, 0-9, "
        "`_` and `-`, starting with a letter).",
        examples=["moderator"],
    ),
]


def _check_password(value: str) -> str:
    problem = password_problem(value)
    if problem:
        raise ValueError(f"password {problem}")
    return value


def _nfkc(value: object) -> object:
    """Look-alike forms (full-width letters and dots) become the address they look like
    before it is validated; the service lower-cases it (identity.service.normalise_email)."""
    return unicodedata.normalize("NFKC", value) if isinstance(value, str) else value


def _check_name(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("name must not be blank")
    return value


class RegisterIn(Strict):
    email: EmailStr = Field(max_length=320, examples=["ada@example.com"])
    password: str = Field(min_length=1, max_length=1024, examples=["correct horse battery"])
    name: str = Field(min_length=1, max_length=100, examples=["Ada Lovelace"])

    _email = field_validator("email", mode="before")(_nfkc)

    _password = field_validator("password")(_check_password)

    _name = field_validator("name")(_check_name)


class Accepted(BaseModel):
    message: str


class TokenIn(Strict):
    token: str = Field(
        min_length=1, max_length=2048, examples=["eyJ1c2VyIjoi...the-token-from-the-email"]
    )


class VerifyOut(BaseModel):
    status: Literal["verified", "already_verified"]


class EmailIn(Strict):
    email: EmailStr = Field(max_length=320, examples=["ada@example.com"])

    _email = field_validator("email", mode="before")(_nfkc)


class SigninIn(Strict):
    email: str = Field(min_length=1, max_length=320, examples=["ada@example.com"])
    password: str = Field(
        min_length=1, max_length=MAX_LENGTH * 8, examples=["correct horse battery"]
    )
    device: str | None = Field(
        default=None, max_length=100, description="A name for this device, shown in sessions."
    )
    device_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{16,128}$",
        description="A random identifier the app makes once per installation (a UUID or 16+ "
        "random URL-safe characters), kept private and sent with every sign-in. While "
        "strangers' wrong guesses have the account locked (429), a device that has signed in "
        "to it before still gets in with the right password.",
        examples=["3f1c9a7e-2b4d-4e8f-9a61-0c5d7b2e8f14"],
    )


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: RoleName
    is_verified: bool
    created_at: datetime


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 scheme name
    expires_in: int = Field(description="Seconds until the access token expires.")
    user: UserOut


class RefreshIn(Strict):
    refresh_token: str = Field(
        min_length=1, max_length=4096, examples=["eyJhbGciOiJIUzI1NiJ9.refresh.token"]
    )


class LogoutIn(Strict):
    refresh_token: str | None = Field(
        default=None,
        max_length=4096,
        description="Also end the session this refresh token belongs to.",
        examples=["eyJhbGciOiJIUzI1NiJ9.refresh.token"],
    )


class ProfilePatch(Strict):
    name: str = Field(min_length=1, max_length=100, examples=["Ada King"])

    _name = field_validator("name")(_check_name)


class PasswordIn(Strict):
    password: str = Field(
        min_length=1, max_length=MAX_LENGTH * 8, examples=["correct horse battery"]
    )


class ChangePasswordIn(Strict):
    current_password: str = Field(
        min_length=1, max_length=MAX_LENGTH * 8, examples=["correct horse battery"]
    )
    new_password: str = Field(min_length=1, max_length=1024, examples=["a longer staple phrase"])

    _password = field_validator("new_password")(_check_password)


class ResetPasswordIn(Strict):
    token: str = Field(min_length=1, max_length=2048, examples=["the-token-from-the-email"])
    new_password: str = Field(min_length=1, max_length=1024, examples=["a longer staple phrase"])

    _password = field_validator("new_password")(_check_password)


class SessionOut(BaseModel):
    id: uuid.UUID
    device: str | None
    user_agent: str | None
    ip: str | None
    created_at: datetime
    last_used_at: datetime
    # When the session ends unless refreshed first; each refresh moves it, up to max_expires_at.
    expires_at: datetime
    # When it ends however often it is refreshed (sign-in + SESSION_MAX_DAYS).
    max_expires_at: datetime
    current: bool


class UserAdminOut(UserOut):
    is_active: bool
    updated_at: datetime


class UserAdminPatch(Strict):
    # Left out, a field stays as it is; the contract offers no null (it would mean the same).
    role: RoleName | None = Field(default=None, json_schema_extra=omit_null)
    is_active: bool | None = Field(default=None, examples=[True], json_schema_extra=omit_null)


class PermissionOut(BaseModel):
    name: Permission
    description: str


class RoleOut(BaseModel):
    name: RoleName
    description: str
    permissions: list[Permission] = Field(description="Sorted by name.")
    built_in: bool = Field(description="`user`, `moderator` and `admin`: fixed, never deleted.")


PERMISSIONS_EXAMPLE = ["books:write_any", "reviews:moderate"]


class RoleIn(Strict):
    name: RoleName
    description: str = Field(default="", max_length=200, examples=["Curates the catalogue"])
    permissions: list[Permission] = Field(
        max_length=len(Permission), examples=[PERMISSIONS_EXAMPLE]
    )


class RolePatch(Strict):
    """Only the fields sent change; `permissions` replaces the whole set."""

    description: str | None = Field(default=None, max_length=200, json_schema_extra=omit_null)
    permissions: list[Permission] | None = Field(
        default=None,
        max_length=len(Permission),
        examples=[PERMISSIONS_EXAMPLE],
        json_schema_extra=omit_null,
    )


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, the claims of the access token they called with, and what
    their role grants."""

    user: User
    claims: TokenClaims
    permissions: frozenset[Permission] = frozenset()


@dataclass(frozen=True)
class Actor:
    """A caller changing something that may be theirs: `permission` lets them change anyone's,
    and `holds_permission` says whether their role grants it."""

    user: User
    permission: Permission
    holds_permission: bool

    def may_change(self, owner_id: uuid.UUID | None) -> bool:
        return self.holds_permission or (owner_id is not None and owner_id == self.user.id)
