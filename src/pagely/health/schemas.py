from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel

from pagely.core.probes import REQUIRED


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class DependencyStatus(BaseModel):
    status: Literal["ok", "down"]
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
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
        down = {name for name, error in failures.items() if error is not None}
        status: Literal["ok", "degraded", "unavailable"] = "ok"
        if down & REQUIRED:
            status = "unavailable"
        elif down:
            status = "degraded"
        return cls(status=status, checks=checks)
