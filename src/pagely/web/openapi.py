"""The OpenAPI document as clients generate code from it: FastAPI's, with every validation
error described by the one error envelope (FastAPI's own `HTTPValidationError` shape is never
sent), the tags described, each operation's access (`x-access`, and `x-permission` where one
is needed, from the route's declaration) and the OAuth2 token URL behind the configured API
prefix."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from pagely.identity.access import Level, declared
from pagely.identity.dependencies import TOKEN_PATH
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
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            invalid = operation.get("responses", {}).get("422")
            if invalid is not None:
                invalid["content"] = {"application/json": {"schema": ENVELOPE_REF}}
                if invalid.get("description") == "Validation Error":
                    invalid["description"] = "Invalid input"
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    _add_examples(components)
    _document_access(app, schema)
    settings: Settings = app.state.settings
    # Generated clients take their default base URL from here (else http://localhost).
    schema["servers"] = [{"url": settings.public_base_url, "description": "This deployment"}]
    _document_search_limit(schema, settings.search_max_query_length)
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
