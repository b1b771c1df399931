"""/users: account administration, for holders of `users:manage`. A role change takes effect
on the user's next request (the role is read from the database on every request); a
deactivation ends every session and refuses every token already issued."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from pagely.core.db import SessionDep
from pagely.core.errors import declare
from pagely.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from pagely.identity import service
from pagely.identity.dependencies import UsersManager
from pagely.identity.errors import (
    BeyondOwnPermissions,
    LastRoleManager,
    OwnAccount,
    UnknownRole,
    UserNotFound,
)
from pagely.identity.schemas import RoleName, UserAdminOut, UserAdminPatch

router = APIRouter(prefix="/users", tags=["users"])


@router.get(
    "",
    operation_id="users_list",
    summary="List users",
    description="Newest first, with cursor pagination. `q` matches part of the email or "
    "the name, case-insensitively. An unknown `role` is a 422 (`unknown_role`).",
    responses=declare(UnknownRole),
)
async def list_users(
    _: UsersManager,
    session: SessionDep,
    q: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    role: Annotated[RoleName | None, Query()] = None,
    is_active: bool | None = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[UserAdminOut]:
    rows, next_cursor = await service.list_users(
        session, search=q, role=role, is_active=is_active, limit=limit, cursor=cursor
    )
    return Page[UserAdminOut](
        items=[UserAdminOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )


@router.get(
    "/{user_id}",
    operation_id="users_get",
    summary="One user",
    description="Everything an admin sees about one account.",
    responses=declare(UserNotFound),
)
async def get_user(_: UsersManager, session: SessionDep, user_id: uuid.UUID) -> UserAdminOut:
    return UserAdminOut.model_validate(
        await service.get_user(session, user_id), from_attributes=True
    )


@router.patch(
    "/{user_id}",
    operation_id="users_update",
    summary="Change a user's role or deactivate them",
    description="Takes effect on the user's next request; deactivating ends every session at "
    "once. `role` names a built-in or custom role (422 `unknown_role` otherwise). You can "
    "only give a role, or change an account, whose permissions you hold yourself (403 "
    "`beyond_own_permissions`); nobody changes their own role or deactivates themselves "
    "(409 `own_account`), and no change may leave nobody holding `roles:manage` (409 "
    "`last_role_manager`).",
    responses=declare(UserNotFound, UnknownRole, BeyondOwnPermissions, OwnAccount, LastRoleManager),
)
async def update_user(
    principal: UsersManager, session: SessionDep, user_id: uuid.UUID, body: UserAdminPatch
) -> UserAdminOut:
    user = await service.update_user(session, principal, user_id, body)
    return UserAdminOut.model_validate(user, from_attributes=True)
