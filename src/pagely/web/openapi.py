"""The OpenAPI document as clients generate code from it: FastAPI's, with every validation
error described by the one error envelope (FastAPI's own `HTTPValidationError` shape is never
sent), the tags described, each operation's access (`x-access`, and `x-permission` where one
is needed, from the route's declaration) and the OAuth2 token URL behind the configured API
prefix."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from pagely.core.errors import Overloaded, ServiceUnavailable, error_types, http_error_type
from pagely.core.idempotency import IdempotencyKeyReused
from pagely.core.middleware import INVALID_HOST
from pagely.core.pagination import InvalidCursor
from pagely.identity.access import Level, declared
from pagely.identity.dependencies import TOKEN_PATH
from pagely.identity.errors import (
    AccessTokenExpired,
    EmailNotVerified,
    InvalidToken,
    MissingPermission,
)
from pagely.settings import Settings
from pagely.web.examples import EXAMPLES

TAGS = [
    {"name": "auth", "description": "Accounts, sign-in, tokens, passwords and sessions."},
    {"name": "books", "description": "The catalog: list, search, read and edit books; tags."},
    {"name": "reviews", "description": "One review per user per book, with rating aggregates."},
    {"name": "notifications", "description": "In-app notifications and email preferences."},
    {"name": "users", "description": "Account administration (`users:manage`)."},
    {"name": "roles", "description": "Permissions, and the roles made of them (`roles:manage`)."},
    {
        "name": "admin",
        "description": "Operations: the email outbox and its queue (`outbox:manage`).",
    },
    {"name": "health", "description": "Liveness and readiness probes."},
]

ENVELOPE_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}

# What holds for every operation, beyond what each one declares.
CONVENTIONS = """\
Every error is the envelope `{"success": false, "error": {"type", "message", "details",
"request_id"}}`; switch on `error.type` (the `ErrorType` enum). Each operation lists per
status the types it can answer (`x-error-types`). Besides those:

- **405** `method_not_allowed`: a method the path does not take; `Allow` lists the ones it
  does. `HEAD` is answered wherever `GET` is, with the same headers and no body.
- **404** `not_found`: a path no operation has.
- **307**, empty body: a path with a trailing slash redirects to the one without.
- **500** `internal_error`: a fault on our side; the message is generic, `request_id` finds
  the log line.

Preconditions: `PUT` and `PATCH` of a book require `If-Match` (428 without it, 412 when
stale); `DELETE` of a book honours it when sent. Reads with an `ETag` honour
`If-None-Match` (304, no body). `POST /books` honours `Idempotency-Key`. No other operation
reads a precondition header."""


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=TAGS,
    )
    schema["info"]["description"] = CONVENTIONS
    _document_access(app, schema)
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    _add_examples(components)
    for component in components.values():
        # The same refusal of unknown fields, in the form OpenAPI 3.1 tools read without a
        # warning (openapi-generator logs "Failed to get the schema name" for each `false`).
        if component.get("additionalProperties") is False:
            del component["additionalProperties"]
            component["unevaluatedProperties"] = False
    _document_errors(schema)
    settings: Settings = app.state.settings
    # Generated clients take their default base URL from here (else http://localhost).
    schema["servers"] = [{"url": settings.public_base_url, "description": "This deployment"}]
    _document_search_limit(schema, settings.search_max_query_length)
    _document_headers(schema)
    _document_token_url(schema, settings.api_prefix)
    app.openapi_schema = schema
    return schema


def _document_access(app: FastAPI, schema: dict[str, Any]) -> None:
    """Who may call each operation, as its route declares it (`pagely.identity.access`):
    `x-access` is public, signed_in, verified, owner_or (the owner, or a holder of
    `x-permission`) or permission."""
    paths = schema.get("paths", {})
    for route in declared(app.routes):
        operations = paths.get(route.path, {})
        for method in route.methods:
            operation = operations.get(method.lower())
            if operation is None or route.access is None:
                continue
            operation["x-access"] = route.access.level.name
            if route.access.level >= Level.owner_or:
                operation["x-permission"] = str(route.access.permission)


def _document_token_url(schema: dict[str, Any], api_prefix: str) -> None:
    """Swagger's Authorize button posts the password form to the scheme's tokenUrl, which must
    carry the configured API prefix: the scheme itself is declared before any settings exist."""
    flows = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
    flows["password"]["tokenUrl"] = api_prefix + TOKEN_PATH


def _add_examples(components: dict[str, Any]) -> None:
    """The hand-written examples, and for each `{items, next_cursor}` page one built from
    its item's example."""
    for name, example in EXAMPLES.items():
        if name in components:
            components[name]["examples"] = [example]
    for component in components.values():
        properties = component.get("properties", {})
        item_ref = properties.get("items", {}).get("items", {}).get("$ref", "")
        item = components.get(item_ref.rsplit("/", 1)[-1], {})
        if "examples" not in component and "next_cursor" in properties and item.get("examples"):
            component["examples"] = [{"items": item["examples"], "next_cursor": None}]


def _document_search_limit(schema: dict[str, Any], limit: int) -> None:
    """The listing's `q` is refused past SEARCH_MAX_QUERY_LENGTH (a setting, unknown when the
    route is declared): the contract states that limit, not the route's hard ceiling."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if operation.get("operationId") != "books_list":
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("name") != "q" or parameter.get("in") != "query":
                    continue
                for variant in [parameter["schema"], *parameter["schema"].get("anyOf", [])]:
                    if variant.get("type") == "string":
                        variant["maxLength"] = limit


# --- response headers and conditional requests ----------------------------------------------

_ETAG_NOTE = (
    'Opaque: send it back exactly as received, quotes included (`"v2"`, not `2`, which '
    "never matches)."
)
_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {"description": "This request's id (yours, when you sent a sane one); "
                     "error bodies and the server's log lines carry it too.",
                     "schema": {"type": "string"}},
    "ETag": {"description": f"The representation's version. {_ETAG_NOTE}",
             "schema": {"type": "string"}},
    "Cache-Control": {"description": "How long a client may reuse the body without asking.",
                      "schema": {"type": "string"}},
    "Location": {"description": "The new resource's path.", "schema": {"type": "string"}},
    "Idempotent-Replayed": {"description": "`true` when this is the stored first answer to "
                            "the same `Idempotency-Key` (nothing was created again).",
                            "schema": {"type": "string", "enum": ["true"]}},
    "Vary": {"description": "The request headers this answer depends on (`Accept`: the page "
             "or JSON).", "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer", "minimum": 1}},
}  # fmt: skip
# GETs that answer 304 to a current If-None-Match.
_CONDITIONAL_READS = {"books_list", "books_get", "books_get_by_isbn", "tags_list"}
# (operation, status): the headers that response carries besides X-Request-ID.
_RESPONSE_HEADERS = {
    **{(op, "200"): ("ETag", "Cache-Control") for op in _CONDITIONAL_READS},
    ("books_create", "201"): ("ETag", "Location", "Idempotent-Replayed"),
    ("books_replace", "200"): ("ETag",),
    ("books_update", "200"): ("ETag",),
    ("roles_create", "201"): ("Location",),
    ("auth_verify_page", "200"): ("Vary", "Cache-Control"),
    ("auth_verify_page", "400"): ("Vary", "Cache-Control"),
}
# Writes that answer 428 without If-Match (and 412 when it is stale).
_REQUIRE_IF_MATCH = {"books_replace", "books_update"}


def _plain_parameter(parameter: dict[str, Any]) -> None:
    """A parameter is left out, never sent as null: `str | None` in the code is an optional
    string in the contract (else clients type it `String?`/`string | null`). A reference
    stands alone: its default goes to the description (dart-dio writes `sort = newest`,
    which does not compile)."""
    schema = parameter.get("schema", {})
    variants = schema.get("anyOf")
    if variants is not None:
        kept = [v for v in variants if v.get("type") != "null"]
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        schema = {**kept[0], **rest} if len(kept) == 1 else {**rest, "anyOf": kept}
    if "$ref" in schema:
        if "default" in schema:
            note = f"Default: `{schema['default']}`."
            parameter["description"] = f"{parameter.get('description', '')} {note}".strip()
        schema = {"$ref": schema["$ref"]}
    parameter["schema"] = schema


def _header_refs(names: tuple[str, ...]) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _document_headers(schema: dict[str, Any]) -> None:
    """Every header a client may read, declared where it is sent (so a generated client reads
    it typed); If-None-Match and the bodiless 304 on the GETs that honour them; If-Match
    required where its absence is a 428."""
    schema.setdefault("components", {})["headers"] = _HEADERS
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation_id = operation.get("operationId")
            for parameter in operation.get("parameters", []):
                _plain_parameter(parameter)
            responses = operation.get("responses", {})
            if operation_id in _CONDITIONAL_READS:
                operation.setdefault("parameters", []).append({
                    "name": "If-None-Match", "in": "header", "required": False,
                    "description": f"An ETag this client holds: 304 with no body when it is "
                    f"still current. {_ETAG_NOTE}",
                    "schema": {"type": "string"},
                })  # fmt: skip
                responses["304"] = {
                    "description": "Not modified: the ETag sent is current. No body; reuse "
                    "the one you hold.",
                    "headers": _header_refs(("ETag", "Cache-Control", "X-Request-ID")),
                }
            if operation_id in _REQUIRE_IF_MATCH:
                for parameter in operation.get("parameters", []):
                    if parameter.get("name") == "If-Match":
                        parameter["required"] = True
                        parameter["schema"] = {"type": "string"}
                        parameter["description"] = (
                            f"The book's current ETag, from a GET: 428 without it, 412 when "
                            f"it is stale. {_ETAG_NOTE}"
                        )
            for status, response in responses.items():
                names = ("X-Request-ID", *_RESPONSE_HEADERS.get((operation_id, status), ()))
                # Every 429 and 503 says when to retry, but readiness's 503: it is a probe's
                # answer, not a refusal.
                if status in ("429", "503") and operation_id != "health_ready":
                    names += ("Retry-After",)
                response.setdefault("headers", {}).update(_header_refs(names))


# --- errors: the type registry as an enum, and what each operation can answer ---------------

# The statuses' descriptions, when the route gives none.
_STATUS_DESCRIPTIONS = {
    400: "Refused",
    401: "Not signed in: refresh on `token_expired`, sign in again on `invalid_token`",
    403: "Not allowed for this user",
    404: "No such resource",
    409: "Conflicts with the current state",
    412: "The If-Match ETag is stale: GET the current version, then retry",
    413: "The body is too large",
    415: "The body is not JSON",
    422: "Invalid input; `details` names each field",
    428: "If-Match is required",
    429: "Rate limited; see Retry-After",
    431: "The request's headers are too large or too many",
    503: "Busy (`overloaded`) or a backing service is down; retry after Retry-After",
}
_HEALTH = {"health_live", "health_ready"}  # probes answer their own way


def _implied_errors(operation: dict[str, Any]) -> list[tuple[int, str]]:
    """The errors every operation of this kind can answer with, from what the contract
    already says of it: a bearer token, its access, a body, parameters, a cursor ..."""
    # The edge's, before any route: oversized headers, a declared body over the limit, a NUL
    # in the query string (a 422 wherever it comes), and a foreign Host but on the probes.
    found = [(status, http_error_type(status)) for status in (431, 413, 422)]
    if operation.get("operationId") in _HEALTH:
        return found
    found.append((400, INVALID_HOST))
    if "security" in operation:
        found += [(401, InvalidToken.type), (401, AccessTokenExpired.type)]
    access = operation.get("x-access")
    if access in (Level.verified.name, Level.owner_or.name):
        found.append((403, EmailNotVerified.type))
    if access == Level.permission.name:
        found.append((403, MissingPermission.type))
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        found.append((415, http_error_type(415)))
    parameters = {p["name"] for p in operation.get("parameters", [])}
    if "cursor" in parameters:
        found.append((422, InvalidCursor.type))
    if "Idempotency-Key" in parameters:
        found.append((422, IdempotencyKeyReused.type))
    found += [(503, Overloaded.type), (503, ServiceUnavailable.type)]
    return found


def _example_ref(examples: dict[str, Any], type_: str, status: int) -> dict[str, str]:
    """A reference to the shared example of this type with this status (written once)."""
    name = f"{type_}_{status}"
    if name not in examples:
        message = error_types()[type_][status]
        details = []
        if type_ == "validation_error":
            details = [{"field": "body.title", "message": "Field required"}]
        error = {"type": type_, "message": message, "details": details,
                 "request_id": "7f3c9b2a1d4e"}  # fmt: skip
        examples[name] = {"summary": message, "value": {"success": False, "error": error}}
    return {"$ref": f"#/components/examples/{name}"}


def _document_errors(schema: dict[str, Any]) -> None:
    """`error.type` as the `ErrorType` enum of every registered type; on each operation, per
    status, the types it can answer with (`x-error-types`, the description, an example of
    each), the ones the route declares (`core.errors.declare`) and the implied ones."""
    registry = error_types()
    components = schema["components"]["schemas"]
    components["ErrorType"] = {
        "type": "string",
        "enum": list(registry),
        "title": "ErrorType",
        "description": "What went wrong, for the client to switch on (the message is for "
        "people). New types are added as the API grows: treat an unknown one by its status.",
    }
    components["ErrorBody"]["properties"]["type"] = {"$ref": "#/components/schemas/ErrorType"}
    examples: dict[str, Any] = {}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, type_ in _implied_errors(operation):
                declared = responses.setdefault(str(status), {}).setdefault("x-error-types", [])
                if type_ not in declared:
                    declared.append(type_)
            for status, response in responses.items():
                types = response.get("x-error-types")
                if types is None:
                    continue
                code = int(status)
                messages = {t: registry[t][code] for t in types}
                base = response.get("description")
                if base in (None, HTTPStatus(code).phrase, "Validation Error"):
                    base = _STATUS_DESCRIPTIONS.get(code, HTTPStatus(code).phrase)
                listed = "".join(f"\n- `{t}`: {m}" for t, m in messages.items())
                response["description"] = f"{base}.{listed}"
                media = response.setdefault("content", {}).setdefault("application/json", {})
                media["schema"] = ENVELOPE_REF
                media["examples"] = {t: _example_ref(examples, t, code) for t in types}
            operation["responses"] = dict(sorted(responses.items()))
    schema["components"]["examples"] = dict(sorted(examples.items()))
