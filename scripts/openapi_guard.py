"""Breaking-change guard for the committed OpenAPI snapshot.

Compares `openapi.json` with the version on a base revision (`main` by default, or
$OPENAPI_BASE) and fails on what would break a generated client (docs/api-versioning.md):
- a removed operation (path + method), a removed 2xx response;
- a response header (on a 2xx or a 304) no longer declared, or its type or enum changed;
- in what the client reads (2xx bodies): a removed field, a required field become optional,
  a type change, a field become nullable, a new enum value, an enum become a free string;
- in what the client sends (bodies, parameters): a new required field or parameter, a body or
  parameter become required, a removed field or parameter, a type change, a field no longer
  nullable, an enum value removed.

    python scripts/openapi_guard.py openapi.json [--base REV]

Intended breaks are acknowledged by listing them, one per line, in `openapi-breaking.txt`
(then cleared once merged).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 20:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec.get("components", {}).get("schemas", {}).get(name, {})
        seen += 1
    return schema


@dataclass(frozen=True)
class Shape:
    """What a generated client's type for one value depends on."""

    types: frozenset[str]  # JSON types besides null; empty: any
    nullable: bool
    enum: frozenset[str] | None  # None: not an enum
    ref: str | None  # the named schema, when it is one

    def describe(self) -> str:
        kinds = "|".join(sorted(self.types)) or "any"
        return kinds + ("|null" if self.nullable else "")


def _shape(spec: dict[str, Any], schema: dict[str, Any]) -> Shape:
    ref = schema["$ref"].rsplit("/", 1)[-1] if "$ref" in schema else None
    schema = _resolve(spec, schema)
    variants = schema.get("anyOf") or schema.get("oneOf") or []
    nullable = False
    types: set[str] = set()
    enum: set[str] | None = None
    for variant in variants:
        inner = _shape(spec, variant)
        nullable |= inner.nullable
        types |= inner.types
        ref = ref or inner.ref
        if inner.enum is not None:
            enum = (enum or set()) | inner.enum
    declared = schema.get("type")
    for kind in declared if isinstance(declared, list) else [declared] if declared else []:
        if kind == "null":
            nullable = True
        else:
            types.add(kind)
    if "const" in schema:
        enum = (enum or set()) | {json.dumps(schema["const"])}
    if "enum" in schema:
        values = {json.dumps(v) for v in schema["enum"] if v is not None}
        nullable |= None in schema["enum"]
        enum = (enum or set()) | values
    if not types and "properties" in schema:
        types.add("object")
    return Shape(frozenset(types), nullable, None if enum is None else frozenset(enum), ref)


@dataclass(frozen=True)
class Field:
    required: bool
    shape: Shape


def _fields(
    spec: dict[str, Any], schema: dict[str, Any], prefix: str, depth: int = 0
) -> dict[str, Field]:
    """Every property path of a schema (following refs, arrays, anyOf/oneOf/allOf), with
    whether it is required and its shape."""
    if depth > 6:
        return {}
    schema = _resolve(spec, schema)
    found: dict[str, Field] = {}
    for variant in schema.get("anyOf", []) + schema.get("allOf", []) + schema.get("oneOf", []):
        found.update(_fields(spec, variant, prefix, depth + 1))
    if schema.get("type") == "array" and "items" in schema:
        found.update(_fields(spec, schema["items"], prefix + "[]", depth + 1))
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{name}"
        found[path] = Field(name in required, _shape(spec, sub))
        found.update(_fields(spec, sub, path, depth + 1))
    return found


def _operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": op
        for path, ops in spec.get("paths", {}).items()
        for method, op in ops.items()
        if method in METHODS
    }


def _media(body: dict[str, Any]) -> str | None:
    """The media type a client reads or sends: JSON when offered, else the first."""
    content = body.get("content", {})
    return next((m for m in ("application/json", *content) if m in content), None)


def _json_schema(body: dict[str, Any], media: str | None = None) -> dict[str, Any] | None:
    media = media or _media(body)
    if media is None or media not in body.get("content", {}):
        return None
    schema: dict[str, Any] = body["content"][media].get("schema", {})
    return schema


def _read_changes(where: str, old: Shape, new: Shape) -> list[str]:
    """A value the client reads (a response field): what it can no longer parse."""
    problems = []
    if old.types and new.types != old.types:
        problems.append(f"type changed: {where} {old.describe()} -> {new.describe()}")
    elif new.nullable and not old.nullable:
        problems.append(f"became nullable: {where}")
    if old.enum is not None and new.enum is not None and new.enum - old.enum:
        added = ", ".join(sorted(new.enum - old.enum))
        problems.append(f"new enum value in a response: {where} {added}")
    if old.enum is not None and new.enum is None:
        problems.append(f"enum became a free value: {where}")
    return problems


def _write_changes(where: str, old: Shape, new: Shape) -> list[str]:
    """A value the client sends (a request field or parameter): what it may no longer send."""
    problems = []
    if old.types and new.types != old.types:
        problems.append(f"type changed: {where} {old.describe()} -> {new.describe()}")
    elif old.nullable and not new.nullable:
        problems.append(f"no longer nullable: {where}")
    if old.enum is not None and (new.enum is None or old.enum - new.enum):
        removed = ", ".join(sorted(old.enum - (new.enum or frozenset())))
        problems.append(f"enum value removed from an input: {where} {removed}")
    return problems


def _responses(key: str, old: dict[str, Any], new: dict[str, Any],
               old_op: dict[str, Any], new_op: dict[str, Any]) -> list[str]:  # fmt: skip
    problems = []
    for status, response in old_op.get("responses", {}).items():
        if not status.startswith("2"):
            continue
        new_response = new_op.get("responses", {}).get(status)
        if new_response is None:
            problems.append(f"removed response: {key} {status}")
            continue
        # Each media type on its own: a JSON answer added beside a page changes nothing for
        # the page's readers, and a page removed beside JSON breaks them.
        for media in response.get("content", {}):
            old_schema = _json_schema(response, media)
            new_schema = _json_schema(new_response, media)
            if new_schema is None:
                problems.append(f"removed response media type: {key} {status} {media}")
                continue
            assert old_schema is not None
            where = key if media == _media(response) else f"{key} ({media})"
            problems += _body_changes(f"{where} {status}", old, new, old_schema, new_schema)
    return problems


def _body_changes(where: str, old: dict[str, Any], new: dict[str, Any],
                  old_schema: dict[str, Any], new_schema: dict[str, Any]) -> list[str]:  # fmt: skip
    problems = _read_changes(f"{where} (body)", _shape(old, old_schema), _shape(new, new_schema))
    kept = _fields(new, new_schema, "")
    for path, before in _fields(old, old_schema, "").items():
        after = kept.get(path)
        if after is None:
            problems.append(f"removed response field: {where} {path}")
            continue
        if before.required and not after.required:
            problems.append(f"response field became optional: {where} {path}")
        problems += _read_changes(f"{where} {path}", before.shape, after.shape)
    return problems


def _header_schema(spec: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in header:
        name = header["$ref"].rsplit("/", 1)[-1]
        header = spec.get("components", {}).get("headers", {}).get(name, {})
    schema: dict[str, Any] = header.get("schema", {})
    return schema


def _response_headers(key: str, old: dict[str, Any], new: dict[str, Any],
                      old_op: dict[str, Any], new_op: dict[str, Any]) -> list[str]:  # fmt: skip
    """The headers a client reads off a success or a 304: one that stops being declared, or
    changes type or enum, breaks the code generated to read it."""
    problems = []
    for status, response in old_op.get("responses", {}).items():
        if not (status.startswith("2") or status == "304"):
            continue
        if status not in new_op.get("responses", {}):
            continue  # reported as a removed response (a 304 may go: the client gets a 200)
        kept = new_op["responses"][status].get("headers", {})
        for name, header in response.get("headers", {}).items():
            where = f"{key} {status} header {name}"
            if name not in kept:
                problems.append(f"removed response header: {where}")
                continue
            was = _shape(old, _header_schema(old, header))
            now = _shape(new, _header_schema(new, kept[name]))
            problems += _read_changes(where, was, now)
    return problems


def _requests(key: str, old: dict[str, Any], new: dict[str, Any],
              old_op: dict[str, Any], new_op: dict[str, Any]) -> list[str]:  # fmt: skip
    problems = []
    old_body, new_body = old_op.get("requestBody"), new_op.get("requestBody")
    if old_body is not None and new_body is None:
        problems.append(f"request body removed: {key}")
    if new_body is not None:
        if new_body.get("required") and not (old_body or {}).get("required"):
            problems.append(f"request body became required: {key}")
        old_fields = _fields(old, _json_schema(old_body or {}) or {}, "")
        new_fields = _fields(new, _json_schema(new_body) or {}, "")
        for path, after in new_fields.items():
            before = old_fields.get(path)
            if after.required and not (before and before.required):
                problems.append(f"new required request field: {key} {path}")
            if before is not None:
                problems += _write_changes(f"{key} {path}", before.shape, after.shape)
        if old_body is not None:
            for path in old_fields.keys() - new_fields.keys():
                problems.append(f"removed request field: {key} {path}")
    old_params = {(p.get("in"), p.get("name")): p for p in old_op.get("parameters", [])}
    new_params = {(p.get("in"), p.get("name")): p for p in new_op.get("parameters", [])}
    for (place, name), param in new_params.items():
        before = old_params.get((place, name))
        if param.get("required") and not (before or {}).get("required"):
            problems.append(f"new required parameter: {key} {place}.{name}")
        if before is not None:
            was, now = _shape(old, before.get("schema", {})), _shape(new, param.get("schema", {}))
            problems += _write_changes(f"{key} {place}.{name}", was, now)
    for place, name in old_params.keys() - new_params.keys():
        problems.append(f"removed parameter: {key} {place}.{name}")
    return problems


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems = []
    old_ops, new_ops = _operations(old), _operations(new)
    for key, old_op in old_ops.items():
        new_op = new_ops.get(key)
        if new_op is None:
            problems.append(f"removed operation: {key}")
            continue
        problems += _responses(key, old, new, old_op, new_op)
        problems += _response_headers(key, old, new, old_op, new_op)
        problems += _requests(key, old, new, old_op, new_op)
    return problems


def _base_spec(path: Path, base: str) -> dict[str, Any] | None:
    resolved = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if resolved.returncode != 0:  # a guard that silently compares nothing is no guard
        raise SystemExit(f"openapi guard: no revision {base!r} to compare with (OPENAPI_BASE)")
    shown = subprocess.run(
        ["git", "show", f"{base}:{path.as_posix()}"], capture_output=True, text=True, check=False
    )
    if shown.returncode != 0:
        return None
    loaded: dict[str, Any] = json.loads(shown.stdout)
    return loaded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("--base", default=os.environ.get("OPENAPI_BASE", "main"))
    args = parser.parse_args()
    old = _base_spec(args.snapshot, args.base)
    if old is None:
        print(f"openapi guard: no {args.snapshot} on {args.base}; nothing to compare")
        return 0
    new = json.loads(args.snapshot.read_text())
    accepted_file = Path("openapi-breaking.txt")
    accepted = set(accepted_file.read_text().splitlines()) if accepted_file.exists() else set()
    problems = [p for p in breaking_changes(old, new) if p not in accepted]
    if problems:
        print(f"openapi guard: breaking changes against {args.base}:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print("List intended ones in openapi-breaking.txt.", file=sys.stderr)
        return 1
    print(f"openapi guard: no breaking change against {args.base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
