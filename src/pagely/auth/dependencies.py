"""Authorization dependencies.

PLACEHOLDER until the accounts issue lands: `AdminUser` accepts a bearer JWT signed with the
server's key whose claims say `type: access` and `role: admin`. The accounts issue replaces
this with the real lookup (user in the database, active, token not revoked)."""

from __future__ import annotations

from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pagely.core.errors import Forbidden, Unauthorized
from pagely.settings import Settings

bearer = HTTPBearer(auto_error=False)


class InvalidToken(Unauthorized):
    type, message = "invalid_token", "The access token is missing, invalid or expired"

    def __init__(self) -> None:
        super().__init__(headers={"WWW-Authenticate": "Bearer"})


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> dict[str, Any]:
    if credentials is None:
        raise InvalidToken()
    settings: Settings = request.app.state.settings
    try:
        claims: dict[str, Any] = jwt.decode(
            credentials.credentials,
            settings.jwt_key(),
            algorithms=["HS256"],
            options={"require": ["sub", "exp", "type"]},
        )
    except jwt.PyJWTError:
        raise InvalidToken() from None
    if claims.get("type") != "access":
        raise InvalidToken()
    if claims.get("role") != "admin":
        raise Forbidden()
    return claims


AdminUser = Annotated[dict[str, Any], Depends(require_admin)]
