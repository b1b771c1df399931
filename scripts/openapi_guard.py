"""Breaking-change guard for the committed OpenAPI snapshot.

Compares `openapi.json` with the version on a base revision (`main` by default, or
$OPENAPI_BASE) and fails on what would break a generated client:
- a removed operation (path + method);
- a field removed from a response body schema;
- a request body or parameter that became required, or a new required one.

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


def _fields(
    spec: dict[str, Any], schema: dict[str, Any], prefix: str, depth: int = 0
) -> dict[str, bool]:
    """Every property path of a schema (following refs, arrays and anyOf), with required-ness."""
    if depth > 6:
        return {}
    schema = _resolve(spec, schema)
    found: dict[str, bool] = {}
    for variant in schema.get("anyOf", []) + schema.get("allOf", []) + schema.get("oneOf", []):
        found.update(_fields(spec, variant, prefix, depth + 1))
    if schema.get("type") == "array" and "items" in schema:
        found.update(_fields(spec, schema["items"], prefix + "[]", depth + 1))
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{name}"
        found[path] = name in required
        found.update(_fields(spec, sub, path, depth + 1))
    return found


def _operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": op
        for path, ops in spec.get("paths", {}).items()
        for method, op in ops.items()
        if method in METHODS
    }


def _json_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    content = body.get("content", {})
    for media in ("application/json", *content):
        if media in content:
            schema: dict[str, Any] = content[media].get("schema", {})
            return schema
    return None


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems = []
    old_ops, new_ops = _operations(old), _operations(new)
    for key, old_op in old_ops.items():
        new_op = new_ops.get(key)
        if new_op is None:
            problems.append(f"removed operation: {key}")
            continue
        # Response fields a client may read.
        for status, response in old_op.get("responses", {}).items():
            if not status.startswith("2"):
                continue
            old_schema = _json_schema(response)
            new_response = new_op.get("responses", {}).get(status)
            if old_schema is None:
                continue
            if new_response is None:
                problems.append(f"removed response: {key} {status}")
                continue
            new_schema = _json_schema(new_response) or {}
            kept = _fields(new, new_schema, "")
            for path in _fields(old, old_schema, ""):
                if path not in kept:
                    problems.append(f"removed response field: {key} {status} {path}")
        # Request fields a client must now send.
        old_body, new_body = old_op.get("requestBody"), new_op.get("requestBody")
        if new_body is not None:
            if new_body.get("required") and not (old_body or {}).get("required"):
                problems.append(f"request body became required: {key}")
            old_fields = _fields(old, _json_schema(old_body or {}) or {}, "")
            for path, required in _fields(new, _json_schema(new_body) or {}, "").items():
                if required and not old_fields.get(path, False):
                    problems.append(f"new required request field: {key} {path}")
        old_params = {(p.get("in"), p.get("name")): p for p in old_op.get("parameters", [])}
        for param in new_op.get("parameters", []):
            before = old_params.get((param.get("in"), param.get("name")))
            if param.get("required") and not (before or {}).get("required"):
                problems.append(f"new required parameter: {key} {param.get('in')}.{param['name']}")
    return problems


def _base_spec(path: Path, base: str) -> dict[str, Any] | None:
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
