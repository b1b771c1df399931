"""/users: account administration for admins. A role change takes effect on the user's next
request (the role is read from the database on every request); a deactivation ends every
session and refuses every token already issued."""

from __future__ import annotations

import uuid
from typing import Annotated

import structlog
from fastapi import APIRouter, Query
from sqlalchemy import or_, tuple_
from sqlmodel import col, select

from pagely.core.db import SessionDep
from pagely.core.errors import Conflict, NotFound, documented
from pagely.core.pagination import (
    CursorQuery,
    LimitQuery,
    Page,
    created_cursor,
    decode_created_cursor,
    paginate,
)
from pagely.identity.dependencies import AdminUser
from pagely.identity.schemas import UserAdminOut, UserAdminPatch
from pagely.identity.service import end_all_sessions
from pagely.models.user import Role, User

log = structlog.get_logger("pagely.security")

router = APIRouter(prefix="/users", tags=["users"], responses=documented(401, 403, 503))


class UserNotFound(NotFound):
    type, message = "user_not_found", "No such user"


class OwnAccount(Conflict):
    type, message = "own_account", "Admins cannot change their own role or deactivate themselves"


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@router.get(
    "",
    operation_id="users_list",
    summary="List users",
    description="Newest first, with cursor pagination. `q` matches part of the email or "
    "the name, case-insensitively.",
    responses=documented(422),
)
async def list_users(
    _: AdminUser,
    session: SessionDep,
    q: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    role: Role | None = None,
    is_active: bool | None = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> Page[UserAdminOut]:
    query = select(User)
    if q is not None:
        pattern = _like(q.strip().lower())
        query = query.where(or_(col(User.email).like(pattern), col(User.name).ilike(pattern)))
    if role is not None:
        query = query.where(col(User.role) == role)
    if is_active is not None:
        query = query.where(col(User.is_active) == is_active)
    after = decode_created_cursor(cursor)
    if after is not None:
        query = query.where(tuple_(col(User.created_at), col(User.id)) < tuple_(*after))
    query = query.order_by(col(User.created_at).desc(), col(User.id).desc()).limit(limit + 1)
    rows, next_cursor = paginate((await session.scalars(query)).all(), limit, created_cursor)
    return Page[UserAdminOut](
        items=[UserAdminOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )


async def _user(session: SessionDep, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound()
    return user


@router.get(
    "/{user_id}",
    operation_id="users_get",
    summary="One user",
    description="Everything an admin sees about one account.",
    responses=documented(404, 422),
)
async def get_user(_: AdminUser, session: SessionDep, user_id: uuid.UUID) -> UserAdminOut:
    return UserAdminOut.model_validate(await _user(session, user_id), from_attributes=True)


@router.patch(
    "/{user_id}",
    operation_id="users_update",
    summary="Change a user's role or deactivate them",
    description="Takes effect on the user's next request. Deactivating ends every session at "
    "once. Admins cannot demote or deactivate themselves (409 `own_account`), so the last "
    "admin cannot lock everyone out.",
    responses=documented(404, 409, 422),
)
async def update_user(
    admin: AdminUser, session: SessionDep, user_id: uuid.UUID, body: UserAdminPatch
) -> UserAdminOut:
    user = await _user(session, user_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if user.id == admin.id and (
        changes.get("role", user.role) != user.role or changes.get("is_active") is False
    ):
        raise OwnAccount()
    if "role" in changes:
        user.role = changes["role"]
    if changes.get("is_active") is False and user.is_active:
        user.is_active = False
        await end_all_sessions(session, user)
    elif changes.get("is_active") is True:
        user.is_active = True
    await session.flush()
    await session.refresh(user)
    log.info("user_admin_update", admin_id=str(admin.id), user_id=str(user.id), **changes)
    return UserAdminOut.model_validate(user, from_attributes=True)
