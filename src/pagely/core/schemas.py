"""The base of every request body."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, model_validator


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class Strict(BaseModel):
    """Request bodies: unknown fields (`role`, `is_verified` ...) are a 422, never ignored,
    and no text may hold a NUL character (PostgreSQL refuses them)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @model_validator(mode="after")
    def _no_nul(self) -> Self:
        for name in type(self).model_fields:
            if _has_nul(getattr(self, name)):
                raise ValueError(f"{name}: NUL characters are not allowed")
        return self
