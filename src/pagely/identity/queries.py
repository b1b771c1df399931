"""The identity feature's SQL: users, and sign-in sessions (one refresh-token family each).

Writes to a user are ORM-enabled UPDATEs (`update(User)` run on the session): SQLAlchemy
applies the new values to the session's `User` object too, so the caller's `CurrentUser`, and
a response built from it, shows the change without another SELECT."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    RowMapping,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from pagely.core.db import affected
from pagely.core.pagination import created_cursor, decode_created_cursor, paginate
from pagely.models.base import table
from pagely.models.role import RoleDefinition
from pagely.models.session import AuthSession
from pagely.models.user import Role, User

# --- users -------------------------------------------------------------------------------


async def user_by_id(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def lock_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The user, its row locked until the transaction ends (one use of a link at a time)."""
    return await session.get(User, user_id, with_for_update=True)


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    """`email` normalised already, as it is stored."""
    return (await session.scalars(select(User).where(col(User.email) == email))).one_or_none()


async def insert_user(
    session: AsyncSession, *, email: str, name: str, password_hash: str
) -> uuid.UUID | None:
    """The new, unverified user's id; None when the address has an account already."""
    statement = (
        pg_insert(User)
        .values(
            id=uuid.uuid4(),
            email=email,
            name=name,
            password_hash=password_hash,
            role=Role.user,
            is_verified=False,
            is_active=True,
            token_version=0,
        )
        .on_conflict_do_nothing(index_elements=["email"])
        .returning(col(User.id))
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def update_user(session: AsyncSession, user_id: uuid.UUID, **values: Any) -> None:
    """Set columns of one user (see the module's docstring: the `User` object follows)."""
    await session.execute(update(User).where(col(User.id) == user_id).values(**values))


async def bump_token_version(session: AsyncSession, user: User) -> None:
    """Every access and refresh token issued to the user so far carries an older version.
    `user` gets the version the database now holds (a concurrent bump included), so tokens
    issued from it next are current."""
    statement = (
        update(User)
        .where(col(User.id) == user.id)
        .values(token_version=col(User.token_version) + 1)
        .returning(col(User.token_version))
        .execution_options(synchronize_session=False)
    )
    version = (await session.execute(statement)).scalar_one()
    set_committed_value(user, "token_version", version)


async def delete_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """The user's sessions and reviews go with it, its books lose their owner (foreign keys)."""
    await session.execute(delete(User).where(col(User.id) == user_id))


def _contains(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, LIKE's own wildcards in it taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def users_page(
    session: AsyncSession,
    *,
    search: str | None,
    role: str | None,
    is_active: bool | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[User], str | None]:
    """Newest first; `search` is part of the email or the name, in any case."""
    statement = select(User)
    if search is not None:
        pattern = _contains(search.strip().lower())
        # Emails are stored lower-case, so LIKE on them is already case-insensitive.
        statement = statement.where(
            or_(col(User.email).like(pattern), col(User.name).ilike(pattern))
        )
    if role is not None:
        statement = statement.where(col(User.role) == role)
    if is_active is not None:
        statement = statement.where(col(User.is_active) == is_active)
    after = decode_created_cursor(cursor)
    if after is not None:
        statement = statement.where(tuple_(col(User.created_at), col(User.id)) < tuple_(*after))
    statement = statement.order_by(col(User.created_at).desc(), col(User.id).desc())
    rows = (await session.scalars(statement.limit(limit + 1))).all()
    return paginate(rows, limit, created_cursor)


# --- who is calling ----------------------------------------------------------------------


async def user_session_and_role(
    session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID
) -> tuple[User, datetime | None, list[str]] | None:
    """The user, when its session `session_id` was revoked (None: it was not) and the
    permissions stored on its role; None when the user or the session is gone."""
    row = (
        await session.execute(
            select(User, col(AuthSession.revoked_at), col(RoleDefinition.permissions))
            .join(AuthSession, col(AuthSession.user_id) == col(User.id))
            .join(RoleDefinition, col(RoleDefinition.name) == col(User.role))
            .where(col(User.id) == user_id, col(AuthSession.id) == session_id)
        )
    ).first()
    return None if row is None else (row[0], row[1], list(row[2]))


# Built once: the hottest authenticated read runs it, and a bound statement skips rebuilding.
_ACCOUNT = (
    select(*table(User).c, col(AuthSession.revoked_at))
    .join(AuthSession, col(AuthSession.user_id) == col(User.id))
    .where(col(User.id) == bindparam("user_id"), col(AuthSession.id) == bindparam("session_id"))
)


async def account_and_session_revoked_at(
    conn: AsyncConnection, user_id: uuid.UUID, session_id: uuid.UUID
) -> RowMapping | None:
    """`user_and_session_revoked_at` as one row: the user's columns and `revoked_at`."""
    result = await conn.execute(_ACCOUNT, {"user_id": user_id, "session_id": session_id})
    return result.mappings().first()


# --- sessions ----------------------------------------------------------------------------


async def insert_session(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    device: str | None,
    device_key: str | None,
    user_agent: str | None,
    ip: str | None,
    now: datetime,
    expires_at: datetime,
    max_expires_at: datetime,
) -> AuthSession:
    statement = (
        insert(AuthSession)
        .values(
            id=uuid.uuid4(),
            user_id=user_id,
            refresh_jti=uuid.uuid4().hex,
            max_expires_at=max_expires_at,
            device=device,
            device_key=device_key,
            user_agent=user_agent,
            ip=ip,
            created_at=now,
            last_used_at=now,
            expires_at=expires_at,
        )
        .returning(AuthSession)
    )
    return (await session.scalars(statement)).one()


async def device_known(session: AsyncSession, email: str, device_key: str, since: datetime) -> bool:
    """Whether the account with address `email` was signed in to from `device_key` in a
    session used since `since`. The same two index lookups whether or not the account exists."""
    statement = select(
        exists().where(
            col(User.email) == email,
            col(AuthSession.user_id) == col(User.id),
            col(AuthSession.device_key) == device_key,
            col(AuthSession.last_used_at) >= since,
        )
    )
    return bool((await session.execute(statement)).scalar_one())


async def session_by_id(session: AsyncSession, session_id: uuid.UUID) -> AuthSession | None:
    return await session.get(AuthSession, session_id)


async def open_sessions(
    session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> Sequence[AuthSession]:
    """Neither revoked nor expired, most recently used first."""
    statement = (
        select(AuthSession)
        .where(
            col(AuthSession.user_id) == user_id,
            col(AuthSession.revoked_at).is_(None),
            col(AuthSession.expires_at) > now,
        )
        .order_by(col(AuthSession.last_used_at).desc())
    )
    return (await session.scalars(statement)).all()


async def lock_session(session: AsyncSession, session_id: uuid.UUID) -> AuthSession | None:
    """The session, its row locked until the transaction ends: concurrent refreshes of one
    family take turns, each seeing what the one before it committed."""
    statement = (
        select(AuthSession)
        .where(col(AuthSession.id) == session_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(statement)).one_or_none()


async def rotate_session(
    session: AsyncSession,
    session_id: uuid.UUID,
    *,
    refresh_jti: str,
    previous_jti: str,
    now: datetime,
    expires_at: datetime,
    successor: dict[str, Any],
) -> AuthSession:
    """Make `refresh_jti` the family's newest refresh token (the caller holds the row lock),
    remembering the one it replaces and the claims of the pair it issued."""
    statement = (
        update(AuthSession)
        .where(col(AuthSession.id) == session_id)
        .values(
            refresh_jti=refresh_jti,
            previous_jti=previous_jti,
            rotated_at=now,
            last_used_at=now,
            expires_at=expires_at,
            successor=successor,
        )
        .returning(AuthSession)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(statement)).one()


async def renew_refresh_jti(session: AsyncSession, session_id: uuid.UUID) -> AuthSession:
    """A new newest refresh token for the session, unconditionally: every earlier one dies,
    the one rotated last included (no grace)."""
    statement = (
        update(AuthSession)
        .where(col(AuthSession.id) == session_id)
        .values(refresh_jti=uuid.uuid4().hex, previous_jti=None, rotated_at=None, successor=None)
        .returning(AuthSession)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(statement)).one()


async def revoke_sessions(
    session: AsyncSession,
    user_id: uuid.UUID,
    now: datetime,
    *,
    keep: uuid.UUID | None = None,
    only: uuid.UUID | None = None,
) -> int:
    """End the user's open sessions (all, all but `keep`, or `only` one); how many ended."""
    statement = update(AuthSession).where(
        col(AuthSession.user_id) == user_id, col(AuthSession.revoked_at).is_(None)
    )
    if keep is not None:
        statement = statement.where(col(AuthSession.id) != keep)
    if only is not None:
        statement = statement.where(col(AuthSession.id) == only)
    return affected(await session.execute(statement.values(revoked_at=now)))


async def revoke_family(session: AsyncSession, session_id: uuid.UUID, now: datetime) -> None:
    """End one session, whoever owns it: a reused refresh token ends its family."""
    await session.execute(
        update(AuthSession)
        .where(col(AuthSession.id) == session_id, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=now)
    )


# --- roles -------------------------------------------------------------------------------

# Any constant: the key of the transaction-level advisory lock that changes able to take
# `roles:manage` from someone hold, one at a time.
_ROLE_MANAGERS_LOCK = 0x7061_6765_6C79_0001


async def all_roles(session: AsyncSession) -> Sequence[RoleDefinition]:
    """Built-in roles first, then custom ones, each by name."""
    statement = select(RoleDefinition).order_by(
        col(RoleDefinition.built_in).desc(), col(RoleDefinition.name)
    )
    return (await session.scalars(statement)).all()


async def role_by_name(
    session: AsyncSession, name: str, *, for_assignment: bool = False
) -> RoleDefinition | None:
    """`for_assignment` holds a share lock until the transaction ends, so the role cannot be
    deleted between this read and the write that assigns it."""
    statement = select(RoleDefinition).where(col(RoleDefinition.name) == name)
    if for_assignment:
        statement = statement.with_for_update(read=True)
    return (await session.scalars(statement)).one_or_none()


async def insert_role(
    session: AsyncSession, name: str, description: str, permissions: Sequence[str]
) -> RoleDefinition | None:
    """The new custom role; None when the name is taken."""
    statement = (
        pg_insert(RoleDefinition)
        .values(name=name, description=description, permissions=permissions, built_in=False)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(RoleDefinition)
    )
    return (await session.scalars(statement)).one_or_none()


async def update_role(session: AsyncSession, name: str, **values: Any) -> RoleDefinition:
    statement = (
        update(RoleDefinition)
        .where(col(RoleDefinition.name) == name)
        .values(**values)
        .returning(RoleDefinition)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(statement)).one()


async def role_in_use(session: AsyncSession, name: str) -> bool:
    statement = select(exists().where(col(User.role) == name))
    return bool((await session.execute(statement)).scalar_one())


async def delete_role(session: AsyncSession, name: str) -> bool:
    """False when a user still holds the role: assigned in a transaction that committed after
    the caller checked (the foreign key refuses the delete)."""
    try:
        async with session.begin_nested():
            await session.execute(delete(RoleDefinition).where(col(RoleDefinition.name) == name))
    except IntegrityError:
        return False
    return True


async def lock_role_managers(session: AsyncSession) -> None:
    """Until the transaction ends, no other change able to take `roles:manage` from someone
    runs: each counts the holders left after its own write, seeing every earlier one."""
    await session.execute(select(func.pg_advisory_xact_lock(_ROLE_MANAGERS_LOCK)))


async def count_active_holders(
    session: AsyncSession, permission: str, built_in_roles: list[str]
) -> int:
    """Active users whose role grants `permission`: one of `built_in_roles`, or a custom role
    that stores it."""
    custom = select(col(RoleDefinition.name)).where(
        col(RoleDefinition.built_in).is_(False),
        col(RoleDefinition.permissions).contains([permission]),
    )
    statement = (
        select(func.count())
        .select_from(User)
        .where(
            col(User.is_active).is_(True),
            or_(col(User.role).in_(built_in_roles), col(User.role).in_(custom)),
        )
    )
    return int((await session.execute(statement)).scalar_one())
