"""The OpenAPI contract a generated client lives on: complete operations, documented errors
in the envelope, a committed snapshot that must match the code, and the breaking-change
guard."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from pagely.app import create_app
from pagely.settings import load_settings
from pagely.web.openapi import TAGS

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "openapi.json"
ENVELOPE = "#/components/schemas/ErrorEnvelope"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    document: dict[str, Any] = create_app(load_settings(_env_file=None)).openapi()
    return document


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


def test_the_committed_snapshot_matches_the_code(spec: dict[str, Any]) -> None:
    committed = json.loads(SNAPSHOT.read_text())
    assert committed == json.loads(json.dumps(spec)), "openapi.json is stale: run `make openapi`"


def test_every_operation_is_complete(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids))
    tags = {t["name"] for t in TAGS}
    schemas = spec["components"]["schemas"]
    for method, path, op in _operations(spec):
        where = f"{method} {path}"
        assert re.fullmatch(r"[a-z]+(_[a-z]+)+", op["operationId"]), where
        assert op.get("summary"), where
        assert op.get("description"), where
        assert op.get("tags"), where
        assert set(op["tags"]) <= tags, where
        responses = op["responses"]
        success = [code for code in responses if code.startswith("2")]
        assert success, where
        known_types = set(schemas["ErrorType"]["enum"])
        for code, response in responses.items():
            # Readiness answers its per-dependency report with the 503, by design.
            if code[0] not in "45" or op["operationId"] == "health_ready":
                continue
            if "x-error-types" not in response:  # a page for the browser (a link's 400)
                assert set(response["content"]) == {"text/html"}, f"{where} {code}"
                continue
            json_body = response["content"]["application/json"]
            assert json_body["schema"] == {"$ref": ENVELOPE}, f"{where} {code}"
            assert response["x-error-types"], f"{where} {code}"
            assert set(response["x-error-types"]) <= known_types, f"{where} {code}"
            assert set(json_body["examples"]) == set(response["x-error-types"]), f"{where} {code}"
            for type_ in response["x-error-types"]:
                assert f"`{type_}`" in response["description"], f"{where} {code} {type_}"
        if op.get("security"):
            assert "401" in responses, where
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in responses, where
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            ref = next(v["$ref"] for v in [body["schema"], *body["schema"].get("anyOf", [])]
                       if "$ref" in v)  # fmt: skip
            schema = schemas[ref.rsplit("/", 1)[-1]]
            has_example = "examples" in schema or any(
                "examples" in prop or "example" in prop for prop in schema["properties"].values()
            )
            assert has_example, f"{where}: request body without an example"


def test_every_json_response_has_an_example(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for method, path, op in _operations(spec):
        for code, response in op["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
            if ref:
                name = ref.rsplit("/", 1)[-1]
                assert schemas[name].get("examples"), f"{method} {path} {code}: {name}"


def test_the_examples_are_valid_responses() -> None:
    from pagely.admin.schemas import OutboxItem, OutboxStats
    from pagely.catalog.books.schemas import BookOut
    from pagely.catalog.reviews.schemas import ReviewCreated, ReviewOut, ReviewPage
    from pagely.catalog.tags.schemas import TagOut
    from pagely.core.errors import ErrorEnvelope
    from pagely.health.schemas import Liveness, Readiness
    from pagely.identity.schemas import (
        Accepted,
        PermissionOut,
        RoleOut,
        SessionOut,
        TokenPair,
        UserAdminOut,
        UserOut,
        VerifyOut,
    )
    from pagely.notifications.schemas import (
        Notification,
        NotificationPage,
        NotificationPreferences,
        ReadAllOut,
        ReviewCreatedNotification,
    )
    from pagely.web.examples import EXAMPLES

    models: list[type[BaseModel]] = [
        Accepted, SessionOut, TokenPair, UserAdminOut, UserOut, VerifyOut, ReviewCreated,
        BookOut, ReviewOut, ReviewPage, TagOut, ErrorEnvelope, Liveness, Readiness,
        Notification, ReviewCreatedNotification, NotificationPage, NotificationPreferences,
        ReadAllOut,
        OutboxItem, OutboxStats, PermissionOut, RoleOut,
    ]  # fmt: skip
    assert {m.__name__ for m in models} == set(EXAMPLES)
    for model in models:
        model.model_validate(EXAMPLES[model.__name__])


def test_security_is_declared(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    by_id = {op["operationId"]: op for _, _, op in _operations(spec)}
    assert by_id["auth_me"]["security"] == [{"OAuth2PasswordBearer": []}]
    assert by_id["books_create"]["security"]
    for public in ("books_list", "books_get", "books_get_by_isbn", "tags_list", "reviews_list"):
        assert by_id[public]["security"] == [{"OAuth2PasswordBearer": []}, {}], public
    assert "security" not in by_id["auth_signin"]


# --- the breaking-change guard -------------------------------------------------------------


def _guard() -> Any:
    loaded = importlib.util.spec_from_file_location(
        "openapi_guard", ROOT / "scripts/openapi_guard.py"
    )
    assert loaded is not None
    assert loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    sys.modules[loaded.name] = module  # its dataclasses look their module up there
    loaded.loader.exec_module(module)
    return module


def test_the_guard_flags_what_breaks_a_client(spec: dict[str, Any]) -> None:
    guard = _guard()
    assert guard.breaking_changes(spec, spec) == []

    removed_op = copy.deepcopy(spec)
    del removed_op["paths"]["/api/v1/tags"]
    assert "removed operation: GET /api/v1/tags" in guard.breaking_changes(spec, removed_op)

    removed_field = copy.deepcopy(spec)
    del removed_field["components"]["schemas"]["BookOut"]["properties"]["isbn10"]
    problems = guard.breaking_changes(spec, removed_field)
    assert "removed response field: GET /api/v1/books/{book_id} 200 .isbn10" in problems
    assert "removed response field: GET /api/v1/books 200 .items[].isbn10" in problems

    new_required = copy.deepcopy(spec)
    review_in = new_required["components"]["schemas"]["ReviewIn"]
    review_in["properties"]["mood"] = {"type": "string"}
    review_in["required"].append("mood")
    assert (
        "new required request field: POST /api/v1/books/{book_id}/reviews .mood"
        in guard.breaking_changes(spec, new_required)
    )

    additive = copy.deepcopy(spec)
    additive["components"]["schemas"]["BookOut"]["properties"]["cover_url"] = {"type": "string"}
    additive["components"]["schemas"]["ReviewIn"]["properties"]["mood"] = {"type": "string"}
    assert guard.breaking_changes(spec, additive) == []


def _schemas(spec: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = spec["components"]["schemas"]
    return schemas


def _parameter(spec: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == name
    ]
    [parameter] = found
    return parameter


def _drop_parameter(spec: dict[str, Any], path: str, name: str) -> None:
    operation = spec["paths"][path]["get"]
    operation["parameters"] = [p for p in operation["parameters"] if p["name"] != name]


BOOK = "GET /api/v1/books/{book_id} 200"
REVIEW = "POST /api/v1/books/{book_id}/reviews"
NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def _responses(spec: dict[str, Any], path: str) -> dict[str, Any]:
    responses: dict[str, Any] = spec["paths"][path]["get"]["responses"]
    return responses


def _sort_enum(spec: dict[str, Any]) -> list[str]:
    values: list[str] = _schemas(spec)["BookSort"]["enum"]  # the named enum `sort` refers to
    return values


def _verify_status(spec: dict[str, Any]) -> list[str]:
    values: list[str] = _schemas(spec)["VerifyOut"]["properties"]["status"]["enum"]
    return values


# (name, mutation, the problem it must be reported as): one kind of break each.
BREAKS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("response type",
     lambda s: _schemas(s)["BookOut"]["properties"].update(title={"type": "integer"}),
     f"type changed: {BOOK} .title string -> integer"),
    ("response nullable",
     lambda s: _schemas(s)["BookOut"]["properties"].update(title=NULLABLE_STRING),
     f"became nullable: {BOOK} .title"),
    ("response optional",
     lambda s: _schemas(s)["BookOut"]["required"].remove("title"),
     f"response field became optional: {BOOK} .title"),
    ("response enum value",
     lambda s: _verify_status(s).append("pending"),
     'new enum value in a response: POST /api/v1/auth/verify 200 .status "pending"'),
    ("removed parameter",
     lambda s: _drop_parameter(s, "/api/v1/books", "owner_id"),
     "removed parameter: GET /api/v1/books query.owner_id"),
    ("parameter required",
     lambda s: _parameter(s, "/api/v1/books", "limit").update(required=True),
     "new required parameter: GET /api/v1/books query.limit"),
    ("parameter type",
     lambda s: _parameter(s, "/api/v1/books", "limit").update(schema={"type": "string"}),
     "type changed: GET /api/v1/books query.limit integer -> string"),
    ("input enum value",
     lambda s: _sort_enum(s).remove("title"),
     'enum value removed from an input: GET /api/v1/books query.sort "title"'),
    ("input not nullable",
     lambda s: _schemas(s)["ReviewIn"]["properties"].update(title={"type": "string"}),
     f"no longer nullable: {REVIEW} .title"),
    ("removed input field",
     lambda s: _schemas(s)["ReviewIn"]["properties"].pop("body"),
     f"removed request field: {REVIEW} .body"),
    ("removed response header",
     lambda s: _responses(s, "/api/v1/books/{book_id}")["304"]["headers"].pop("ETag"),
     "removed response header: GET /api/v1/books/{book_id} 304 header ETag"),
    ("response header type",
     lambda s: s["components"]["headers"]["ETag"].update(schema={"type": "integer"}),
     f"type changed: {BOOK} header ETag string -> integer"),
    ("response header enum",
     lambda s: s["components"]["headers"]["Idempotent-Replayed"]["schema"]["enum"].append("no"),
     'new enum value in a response: POST /api/v1/books 201 header Idempotent-Replayed "no"'),
]  # fmt: skip


@pytest.mark.parametrize(("mutation", "expected"), [(m, e) for _, m, e in BREAKS],
                         ids=[name for name, _, _ in BREAKS])  # fmt: skip
def test_the_guard_catches_each_kind_of_break(
    spec: dict[str, Any], mutation: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    changed = copy.deepcopy(spec)
    mutation(changed)
    assert expected in _guard().breaking_changes(spec, changed)


def test_the_guard_lets_additions_through(spec: dict[str, Any]) -> None:
    changed = copy.deepcopy(spec)
    _schemas(changed)["BookOut"]["properties"]["cover_url"] = {"type": "string"}  # new output
    _sort_enum(changed).append("author")  # a new value a client may send
    _verify_status(changed).remove("already_verified")  # one value fewer it may read
    changed["paths"]["/api/v1/shelves"] = {"get": {"responses": {"200": {"description": "x"}}}}
    assert _guard().breaking_changes(spec, changed) == []


def test_what_a_generated_client_needs_from_the_contract(spec: dict[str, Any]) -> None:
    settings = load_settings(_env_file=None)
    assert spec["servers"] == [{"url": settings.public_base_url, "description": "This deployment"}]
    # Sorts are named enums (a Dart enum, not a String?).
    assert _parameter(spec, "/api/v1/books", "sort")["schema"] == {
        "$ref": "#/components/schemas/BookSort"
    }
    reviews = spec["paths"]["/api/v1/books/{book_id}/reviews"]["get"]["parameters"]
    [sort] = [p for p in reviews if p["name"] == "sort"]
    assert sort["schema"]["$ref"] == "#/components/schemas/ReviewSort"
    # The search's stated limit is the one the server applies.
    text = _parameter(spec, "/api/v1/books", "q")["schema"]
    assert text["maxLength"] == settings.search_max_query_length
    # A parameter is omitted, never sent as null: no `String?` / `string | null` for one.
    for method, path, op in _operations(spec):
        for parameter in op.get("parameters", []):
            variants = [parameter["schema"], *parameter["schema"].get("anyOf", [])]
            assert all(v.get("type") != "null" for v in variants), (method, path, parameter)
    # A PATCH field that refuses null does not offer it; one that clears with null does.
    patch = spec["components"]["schemas"]["BookPatch"]["properties"]
    assert patch["title"]["type"] == "string"
    assert "anyOf" not in patch["title"]
    assert {"type": "null"} in patch["subtitle"]["anyOf"]
    # Notifications are one schema per kind, told apart by `kind`.
    union = spec["components"]["schemas"]["Notification"]
    assert union["discriminator"]["propertyName"] == "kind"
    kinds = spec["components"]["schemas"]["ReviewCreatedNotification"]["properties"]["kind"]
    assert kinds["const"] == "review_created"
    assert union["discriminator"]["mapping"] == {
        "review_created": "#/components/schemas/ReviewCreatedNotification"
    }


def test_error_types_are_one_registry(spec: dict[str, Any]) -> None:
    """`ErrorType` is the registry, and the suite's check of observed errors can fail."""
    from pagely.core.errors import error_types
    from tests.fixtures.contract import Observed, undeclared

    assert spec["components"]["schemas"]["ErrorType"]["enum"] == list(error_types())
    body = spec["components"]["schemas"]["ErrorBody"]["properties"]["type"]
    assert body == {"$ref": "#/components/schemas/ErrorType"}
    contract = json.dumps(spec)
    book = "/api/v1/books/0c6f8f0e-5b7a-4d7e-8c1a-2f9b7e4d3a10"
    fine = {
        Observed("GET", book, 404, "book_not_found"),
        Observed("HEAD", book, 401, "token_expired"),
        Observed("GET", "/api/v1/books/isbn/123", 404, "book_not_found"),
        Observed("GET", "/api/v1/nowhere", 404, "not_found"),  # no operation: the edge's
    }
    assert undeclared(fine, contract) == []
    wrong = {
        Observed("GET", book, 404, "role_not_found"),
        Observed("DELETE", book, 409, "isbn_exists"),
    }
    assert undeclared(wrong, contract) == [
        f"books_delete (DELETE {book}): 409 isbn_exists is not declared",
        f"books_get (GET {book}): 404 role_not_found is not declared",
    ]


def _operation(spec: dict[str, Any], operation_id: str) -> dict[str, Any]:
    [found] = [op for _, _, op in _operations(spec) if op.get("operationId") == operation_id]
    return found


def test_headers_and_conditional_requests_are_declared(spec: dict[str, Any]) -> None:
    ref = "#/components/headers/"
    for method, path, operation in _operations(spec):
        for status, response in operation["responses"].items():
            headers = response.get("headers", {})
            assert headers.get("X-Request-ID") == {"$ref": ref + "X-Request-ID"}, (path, status)
            if status in ("429", "503") and operation.get("operationId") != "health_ready":
                assert "Retry-After" in headers, (method, path, status)
    for read in ("books_list", "books_get", "books_get_by_isbn", "tags_list"):
        operation = _operation(spec, read)
        assert any(p["name"] == "If-None-Match" for p in operation["parameters"]), read
        assert "content" not in operation["responses"]["304"], read  # bodiless
        assert "ETag" in operation["responses"]["200"]["headers"], read
    created = _operation(spec, "books_create")["responses"]["201"]["headers"]
    assert {"ETag", "Location", "Idempotent-Replayed", "X-Request-ID"} <= created.keys()
    for write in ("books_replace", "books_update"):
        [if_match] = [p for p in _operation(spec, write)["parameters"] if p["name"] == "If-Match"]
        assert if_match["required"] is True, write
        assert "428" in _operation(spec, write)["responses"], write
    [optional] = [p for p in _operation(spec, "books_delete")["parameters"]
                  if p["name"] == "If-Match"]  # fmt: skip
    assert optional["required"] is False  # DELETE honours it without requiring it
