"""Administration: accounts (role and deactivation) and the roles themselves.

Two rules keep permissions from leaking or vanishing:
- Nobody grants what they do not hold: a role can be created, changed, deleted or assigned,
  and an account changed, only within the caller's own permissions (403
  `beyond_own_permissions`), so `users:manage` alone cannot make anyone an admin.
- Someone always holds `roles:manage`: every change that could take it from its last active
  holder runs under one advisory lock and counts the holders left (409 `last_role_manager`).

Each change is a security event in the `pagely.security` log. `pagely.identity.service`
re-exports what the routers use."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from pagely.identity import permissions, queries
from pagely.identity._sessions import end_sessions
from pagely.identity.errors import (
    BeyondOwnPermissions,
    BuiltInRole,
    LastRoleManager,
    OwnAccount,
    RoleExists,
    RoleInUse,
    RoleNotFound,
    UnknownRole,
    UserNotFound,
)
from pagely.identity.permissions import Permission
from pagely.identity.schemas import (
    PermissionOut,
    Principal,
    RoleIn,
    RoleOut,
    RolePatch,
    UserAdminPatch,
)
from pagely.models.role import RoleDefinition
from pagely.models.user import User

log = structlog.get_logger("pagely.security")


# --- the guards --------------------------------------------------------------------------


def _within(principal: Principal, granted: Iterable[Permission]) -> None:
    if not set(granted) <= principal.permissions:
        log.warning("authz_fail", user_id=str(principal.user.id), reason="beyond own permissions")
        raise BeyondOwnPermissions()


@asynccontextmanager
async def keeping_a_role_manager(session: AsyncSession) -> AsyncIterator[None]:
    """Around a change that could take `roles:manage` from someone: refused (409) when no
    active user would hold it afterwards. Such changes take turns (an advisory lock held to
    the end of the transaction), so two admins demoting each other cannot both succeed."""
    await queries.lock_role_managers(session)
    yield
    holders = await queries.count_active_holders(
        session, Permission.roles_manage, permissions.built_in_holding(Permission.roles_manage)
    )
    if holders == 0:
        raise LastRoleManager()


async def _granted_by(session: AsyncSession, name: str) -> frozenset[Permission]:
    if name in permissions.BUILT_IN:
        return permissions.of_role(name, None)
    role = await queries.role_by_name(session, name)
    return permissions.of_role(name, role.permissions if role else None)


# --- accounts ----------------------------------------------------------------------------


async def list_users(
    session: AsyncSession,
    *,
    search: str | None,
    role: str | None,
    is_active: bool | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[User], str | None]:
    if search is not None:  # the look-alike forms of an address find it (normalise_email)
        search = unicodedata.normalize("NFKC", search)
    if role is not None and await queries.role_by_name(session, role) is None:
        raise UnknownRole()
    return await queries.users_page(
        session, search=search, role=role, is_active=is_active, limit=limit, cursor=cursor
    )


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await queries.user_by_id(session, user_id)
    if user is None:
        raise UserNotFound()
    return user


async def update_user(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID, patch: UserAdminPatch
) -> User:
    """The role takes effect on the user's next request (it is read on every request); a
    deactivation ends every session and refuses every token already issued. Nobody changes
    their own role or deactivates themselves (409 `own_account`)."""
    caller = principal.user
    user = await get_user(session, user_id)
    changes = patch.model_dump(exclude_unset=True, exclude_none=True)
    different = {field: value for field, value in changes.items() if value != getattr(user, field)}
    if not different:  # a PATCH that changes nothing writes nothing (updated_at stays)
        return user
    if user.id == caller.id:
        raise OwnAccount()
    _within(principal, await _granted_by(session, user.role))
    if "role" in different:
        role = await queries.role_by_name(session, different["role"], for_assignment=True)
        if role is None:
            raise UnknownRole()
        _within(principal, permissions.of_role(role.name, role.permissions))
    async with keeping_a_role_manager(session):
        if different.get("is_active") is False:
            await end_sessions(session, user)
        before = user.role
        await queries.update_user(session, user.id, **different)
    if "role" in different:
        log.info("authz_user_role_changed", actor_id=str(caller.id), user_id=str(user.id),
                 role_before=before, role=user.role)  # fmt: skip
    if "is_active" in different:
        event = "authz_user_activated" if user.is_active else "authz_user_deactivated"
        log.info(event, actor_id=str(caller.id), user_id=str(user.id))
    return user


async def delete_own_account(session: AsyncSession, user: User) -> None:
    """The last holder of `roles:manage` cannot delete their account (409)."""
    async with keeping_a_role_manager(session):
        await queries.delete_user(session, user.id)


# --- roles -------------------------------------------------------------------------------


def list_permissions() -> list[PermissionOut]:
    return [PermissionOut(name=p, description=permissions.DESCRIPTIONS[p]) for p in Permission]


def _out(role: RoleDefinition) -> RoleOut:
    granted = sorted(permissions.of_role(role.name, role.permissions))
    return RoleOut(
        name=role.name, description=role.description, permissions=granted, built_in=role.built_in
    )


async def list_roles(session: AsyncSession) -> list[RoleOut]:
    return [_out(role) for role in await queries.all_roles(session)]


async def _custom_role(session: AsyncSession, name: str) -> RoleDefinition:
    role = await queries.role_by_name(session, name)
    if role is None:
        raise RoleNotFound()
    if role.built_in:
        raise BuiltInRole()
    return role


async def create_role(session: AsyncSession, principal: Principal, body: RoleIn) -> RoleOut:
    granted = sorted(set(body.permissions))
    _within(principal, granted)
    role = await queries.insert_role(session, body.name, body.description, granted)
    if role is None:
        raise RoleExists()
    log.info("authz_role_created", actor_id=str(principal.user.id), role=role.name,
             permissions=granted)  # fmt: skip
    return _out(role)


async def update_role(
    session: AsyncSession, principal: Principal, name: str, patch: RolePatch
) -> RoleOut:
    """`permissions` replaces the set; holders have the new one on their next request."""
    role = await _custom_role(session, name)
    before = sorted(permissions.known(role.permissions))
    _within(principal, before)
    values: dict[str, object] = {}
    if patch.description is not None:
        values["description"] = patch.description
    if patch.permissions is not None:
        granted = sorted(set(patch.permissions))
        _within(principal, granted)
        values["permissions"] = granted
    if not values:
        return _out(role)
    async with keeping_a_role_manager(session):
        role = await queries.update_role(session, name, **values)
    log.info("authz_role_changed", actor_id=str(principal.user.id), role=name,
             permissions_before=before, permissions=sorted(role.permissions))  # fmt: skip
    return _out(role)


async def delete_role(session: AsyncSession, principal: Principal, name: str) -> None:
    role = await _custom_role(session, name)
    _within(principal, permissions.known(role.permissions))
    if await queries.role_in_use(session, name) or not await queries.delete_role(session, name):
        raise RoleInUse()
    log.info("authz_role_deleted", actor_id=str(principal.user.id), role=name)
