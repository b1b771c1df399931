"""/permissions and /roles: the permission catalogue and the roles built from it, managed by
holders of `roles:manage`. A change reaches the role's holders on their next request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from pagely.core.db import SessionDep
from pagely.core.errors import declare
from pagely.core.resources import SettingsDep
from pagely.identity import service
from pagely.identity.dependencies import RolesManager
from pagely.identity.errors import (
    BeyondOwnPermissions,
    BuiltInRole,
    LastRoleManager,
    RoleExists,
    RoleInUse,
    RoleNotFound,
)
from pagely.identity.schemas import PermissionOut, RoleIn, RoleOut, RolePatch

router = APIRouter(tags=["roles"])

RoleNamePath = Annotated[str, Path(max_length=40, examples=["curator"])]


@router.get(
    "/permissions",
    operation_id="permissions_list",
    summary="Every permission",
    description="What a route can require; roles are named sets of these.",
)
async def list_permissions(_: RolesManager) -> list[PermissionOut]:
    return service.list_permissions()


@router.get(
    "/roles",
    operation_id="roles_list",
    summary="Every role",
    description="The built-in roles (`user`, `moderator`, `admin`, which holds every "
    "permission) first, then the custom ones, by name.",
)
async def list_roles(_: RolesManager, session: SessionDep) -> list[RoleOut]:
    return await service.list_roles(session)


@router.post(
    "/roles",
    operation_id="roles_create",
    summary="Create a custom role",
    description="Only with permissions you hold yourself (403 `beyond_own_permissions`). "
    "An unknown permission is a 422.",
    status_code=status.HTTP_201_CREATED,
    responses=declare(BeyondOwnPermissions, RoleExists),
)
async def create_role(
    principal: RolesManager,
    session: SessionDep,
    settings: SettingsDep,
    body: RoleIn,
    response: Response,
) -> RoleOut:
    role = await service.create_role(session, principal, body)
    response.headers["Location"] = f"{settings.api_prefix}/roles/{role.name}"
    return role


@router.patch(
    "/roles/{name}",
    operation_id="roles_update",
    summary="Change a custom role",
    description="`permissions` replaces the whole set; the role's holders have it on their "
    "next request. Built-in roles cannot be changed (409 `role_built_in`), and no change may "
    "leave nobody holding `roles:manage` (409 `last_role_manager`).",
    responses=declare(RoleNotFound, BuiltInRole, BeyondOwnPermissions, LastRoleManager),
)
async def update_role(
    principal: RolesManager, session: SessionDep, name: RoleNamePath, body: RolePatch
) -> RoleOut:
    return await service.update_role(session, principal, name, body)


@router.delete(
    "/roles/{name}",
    operation_id="roles_delete",
    summary="Delete a custom role",
    description="Built-in roles cannot be deleted (409 `role_built_in`), nor a role someone "
    "holds (409 `role_in_use`).",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=declare(RoleNotFound, BuiltInRole, BeyondOwnPermissions, RoleInUse),
)
async def delete_role(principal: RolesManager, session: SessionDep, name: RoleNamePath) -> Response:
    await service.delete_role(session, principal, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
