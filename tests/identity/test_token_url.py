"""The OAuth2 token URL that OpenAPI documents (where Swagger's Authorize button posts the
password form) follows the API prefix, which is a setting."""

from __future__ import annotations

from typing import Any

import pytest

from pagely.app import create_app
from pagely.settings import load_settings


def _token_url(spec: dict[str, Any]) -> str:
    scheme = spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    url: str = scheme["flows"]["password"]["tokenUrl"]
    return url


def _token_route(spec: dict[str, Any]) -> str:
    paths: dict[str, dict[str, Any]] = spec["paths"]
    return next(
        path
        for path, operations in paths.items()
        if operations.get("post", {}).get("operationId") == "auth_token"
    )


def test_the_token_url_is_the_token_route_under_the_default_prefix() -> None:
    spec = create_app(load_settings(_env_file=None)).openapi()
    assert _token_url(spec) == "/api/v1/auth/token" == _token_route(spec)


def test_another_api_prefix_moves_the_token_url_with_the_route(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("API_PREFIX", "/shop/api/v2")
    spec = create_app(load_settings(_env_file=None)).openapi()
    assert _token_url(spec) == "/shop/api/v2/auth/token" == _token_route(spec)
