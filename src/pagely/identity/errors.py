"""The identity feature's errors: what a client switches on (`type`) when an account, token or
session is refused."""

from __future__ import annotations

from pagely.core.errors import AppError, Conflict, Forbidden, NotFound, Unauthorized

# --- who is calling ----------------------------------------------------------------------


class BearerRefused(Unauthorized):
    """A 401 that names the scheme to retry with (RFC 6750): every refused bearer token."""

    def __init__(self) -> None:
        super().__init__(headers={"WWW-Authenticate": "Bearer"})


class InvalidToken(BearerRefused):
    """The app signs in again: the token is missing, malformed, foreign or revoked."""

    type, message = "invalid_token", "The access token is missing, invalid or revoked"


class AccessTokenExpired(BearerRefused):
    """The app refreshes: the access token is genuine but past its lifetime."""

    type, message = "token_expired", "The access token has expired; refresh it"


class EmailNotVerified(Forbidden):
    type, message = "email_not_verified", "Verify your email address first"


# --- sign-in and the refresh-token lifecycle ---------------------------------------------


class InvalidCredentials(Unauthorized):
    type, message = "invalid_credentials", "Wrong email or password"


class InvalidRefreshToken(InvalidToken):
    """The same `invalid_token` (the app signs in again), saying which token it means."""

    message = "The refresh token is invalid, expired or revoked; sign in again"


class TokenReused(BearerRefused):
    type, message = "token_reused", "This refresh token was already used; the session has ended"


class SessionNotFound(NotFound):
    type, message = "session_not_found", "No such session"


# --- the links in emails, and passwords --------------------------------------------------


class InvalidEmailToken(AppError):
    status_code, type, message = 400, "invalid_token", "This link is not valid"


class EmailTokenExpired(AppError):
    status_code, type, message = 400, "token_expired", "This link has expired; ask for a new one"


class WrongPassword(AppError):
    status_code, type, message = 400, "invalid_password", "The current password is not correct"


# --- user administration -----------------------------------------------------------------


class UserNotFound(NotFound):
    type, message = "user_not_found", "No such user"


class OwnAccount(Conflict):
    type, message = "own_account", "Admins cannot change their own role or deactivate themselves"


# --- permissions and roles ---------------------------------------------------------------


class MissingPermission(Forbidden):
    def __init__(self, permission: str) -> None:
        super().__init__(f"This needs the {permission} permission")


class BeyondOwnPermissions(Forbidden):
    type = "beyond_own_permissions"
    message = "You can only grant, or act on accounts holding, permissions you hold yourself"


class UnknownRole(AppError):
    status_code, type, message = 422, "unknown_role", "No role has this name"


class RoleNotFound(NotFound):
    type, message = "role_not_found", "No such role"


class RoleExists(Conflict):
    type, message = "role_exists", "A role with this name exists"


class BuiltInRole(Conflict):
    type, message = "role_built_in", "Built-in roles cannot be changed or deleted"


class RoleInUse(Conflict):
    type, message = "role_in_use", "Users hold this role; give them another one first"


class LastRoleManager(Conflict):
    type = "last_role_manager"
    message = "This would leave nobody able to manage roles (roles:manage)"
