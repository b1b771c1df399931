"""The base of every request body."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


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


def omit_null(schema: dict[str, Any]) -> None:
    """`Field(json_schema_extra=omit_null)`: a PATCH field that may be left out but takes no
    null (the model refuses one, or reads it as "unchanged"). The contract offers no null, so
    a generated client does not type it nullable; validation is unchanged."""
    variants = schema.get("anyOf")
    if variants is None:
        return
    kept = [variant for variant in variants if variant.get("type") != "null"]
    if len(kept) == 1:
        del schema["anyOf"]
        schema.update(kept[0])
    else:
        schema["anyOf"] = kept
    if schema.get("default", ...) is None:
        del schema["default"]


class NamedEnum(StrEnum):
    """An enum whose schema names its members (`x-enum-varnames`, camelCase): a generated
    client's constant for `-rating` is `ratingDesc`, not `rating2`."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        names = {member.value: member.name for member in cls}
        target["x-enum-varnames"] = [_camel(names[value]) for value in target["enum"]]
        return schema


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)
