"""What each route asks of its caller, declared by the dependency that enforces it.

Every dependency that admits or refuses a caller is registered here with the `Access` it
stands for (`declares`), and a route's access is the strictest one among its dependencies
(`route_access`). So the declaration cannot drift from the check: a route that requires
`users:manage` does so because it depends on the dependency that refuses everyone else.
Routes anyone may call say so with `dependencies=[PUBLIC]`. The access-matrix test walks every
route with this and fails on a route that declares nothing; the OpenAPI document states each
operation's permission from it too."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, TypeVar

from fastapi import Depends
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from pagely.identity.permissions import Permission

F = TypeVar("F", bound=Callable[..., Any])


class Level(IntEnum):
    """From the least to the most a route asks; a route's access is its highest."""

    public = 0  # anyone; a token, when sent, must be good
    signed_in = 1  # any account
    verified = 2  # an account with a verified email
    owner_or = 3  # verified, and the owner of what it changes, or holding `permission`
    permission = 4  # holding `permission`


@dataclass(frozen=True)
class Access:
    level: Level
    permission: Permission | None = None

    def __str__(self) -> str:
        if self.level is Level.owner_or:
            return f"owner or {self.permission}"
        return str(self.permission) if self.level is Level.permission else self.level.name


_DECLARED: dict[Callable[..., Any], Access] = {}


def declares(access: Access) -> Callable[[F], F]:
    """Register the decorated dependency as enforcing `access`."""

    def register(dependency: F) -> F:
        _DECLARED[dependency] = access
        return dependency

    return register


@declares(Access(Level.public))
async def public() -> None:
    """The declaration of a route anyone may call: `dependencies=[PUBLIC]`."""


PUBLIC = Depends(public)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def route_access(dependant: Dependant) -> Access | None:
    """The strictest access among a route's dependencies; None when it declares none."""
    found = [_DECLARED[call] for call in _calls(dependant) if call in _DECLARED]
    return max(found, key=lambda access: access.level, default=None)


@dataclass(frozen=True)
class Declared:
    path: str
    methods: frozenset[str]
    operation_id: str | None
    access: Access | None


def declared(routes: Sequence[BaseRoute]) -> Iterator[Declared]:
    """Every API route under `routes` (through included routers, with their prefixes and
    dependencies), with the access it declares."""
    for context in iter_route_contexts(routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        yield Declared(
            context.path or "",
            frozenset(context.methods or ()),
            context.operation_id,
            route_access(context.dependant),
        )
