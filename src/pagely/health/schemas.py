from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class DependencyStatus(BaseModel):
    status: Literal["ok", "down"]
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, DependencyStatus]

    @classmethod
    def of(cls, failures: Mapping[str, str | None]) -> Readiness:
        """From each dependency's failure (None for one that answered)."""
        checks = {
            name: DependencyStatus(status="ok")
            if error is None
            else DependencyStatus(status="down", error=error)
            for name, error in failures.items()
        }
        healthy = all(error is None for error in failures.values())
        return cls(status="ok" if healthy else "unavailable", checks=checks)
