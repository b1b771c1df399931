"""The permission catalogue: what a route can require, and the built-in roles.

A role is a named set of permissions. The three built-in roles are defined here, in code
(their rows in `roles` exist so `users.role` can reference them, with no permissions of their
own): `admin` holds every permission, including any added later. Custom roles keep their
permissions in the database; names this catalogue no longer knows are ignored."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pagely.models.user import Role


class Permission(StrEnum):
    books_write_any = "books:write_any"
    books_delete_any = "books:delete_any"
    reviews_moderate = "reviews:moderate"
    users_manage = "users:manage"
    roles_manage = "roles:manage"
    outbox_manage = "outbox:manage"


DESCRIPTIONS: dict[Permission, str] = {
    Permission.books_write_any: "Replace or change any book, not only your own",
    Permission.books_delete_any: "Delete any book, not only your own",
    Permission.reviews_moderate: "Remove anyone's review",
    Permission.users_manage: "List and view accounts, change their role, deactivate them",
    Permission.roles_manage: "Create, change and delete custom roles",
    Permission.outbox_manage: "See the email outbox and retry failed messages",
}

BUILT_IN: dict[str, frozenset[Permission]] = {
    Role.user: frozenset(),  # reads, and writes its own books and reviews
    Role.moderator: frozenset({Permission.reviews_moderate}),
    Role.admin: frozenset(Permission),
}


def known(names: Iterable[str]) -> frozenset[Permission]:
    """The permissions among `names` that the catalogue knows."""
    values = {p.value for p in Permission}
    return frozenset(Permission(name) for name in names if name in values)


def of_role(name: str, stored: Iterable[str] | None) -> frozenset[Permission]:
    """What role `name` grants: the catalogue's set for a built-in role, else `stored`."""
    if name in BUILT_IN:
        return BUILT_IN[name]
    return known(stored or ())


def built_in_holding(permission: Permission) -> list[str]:
    return [name for name, granted in BUILT_IN.items() if permission in granted]
