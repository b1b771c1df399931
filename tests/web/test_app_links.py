"""App links: the iOS and Android association documents at the site root, built from settings
(404 in the error envelope while unset), and the verify page handing its outcome to the app
(`pagely://verify?status=...`), never offering the success link for a bad token."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from pagely.core.clock import clock
from pagely.core.resources import Resources
from pagely.identity import tokens
from pagely.settings import ConfigError, Settings, load_settings
from tests.fixtures.accounts import make_user
from tests.fixtures.apps import app_client

AASA = "/.well-known/apple-app-site-association"
ASSET_LINKS = "/.well-known/assetlinks.json"
APP_IDS = ["ABCDE12345.dev.pagely.app", "FGHIJ67890.dev.pagely.beta"]
PACKAGE = "dev.pagely.app"
FINGERPRINT = ":".join(f"{i:02X}" for i in range(32))
OTHER_FINGERPRINT = ":".join("AB" for _ in range(32))
CONFIGURED = {
    "ios_app_ids": APP_IDS,
    "android_app_package": PACKAGE,
    "android_cert_fingerprints": [FINGERPRINT, OTHER_FINGERPRINT],
}


def _assert_json(response: httpx.Response) -> None:
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "location" not in response.headers


async def test_both_documents_when_configured(settings: Settings) -> None:
    async with app_client(settings, api_prefix="/api/v2", **CONFIGURED) as client:
        apple = await client.get(AASA, follow_redirects=False)
        android = await client.get(ASSET_LINKS, follow_redirects=False)
    _assert_json(apple)
    _assert_json(android)
    paths = ["/api/v2/auth/verify/*", "/api/v2/auth/reset-password/*"]
    assert apple.json() == {
        "applinks": {
            "apps": [],
            "details": [
                {
                    "appIDs": APP_IDS,
                    "components": [
                        {"/": "/api/v2/auth/verify/*"},
                        {"/": "/api/v2/auth/reset-password/*"},
                    ],
                },
                {"appID": "ABCDE12345.dev.pagely.app", "paths": paths},
                {"appID": "FGHIJ67890.dev.pagely.beta", "paths": paths},
            ],
        }
    }
    assert android.json() == [
        {
            "relation": ["delegate_permission/common.handle_all_urls"],
            "target": {
                "namespace": "android_app",
                "package_name": PACKAGE,
                "sha256_cert_fingerprints": [FINGERPRINT, OTHER_FINGERPRINT],
            },
        }
    ]


async def test_documents_are_at_the_root_not_under_the_api_prefix(settings: Settings) -> None:
    async with app_client(settings, **CONFIGURED) as client:
        for path in (AASA, ASSET_LINKS):
            assert (await client.get(f"{settings.api_prefix}{path}")).status_code == 404


@pytest.mark.parametrize(
    ("unset", "path"),
    [
        ({"ios_app_ids": []}, AASA),
        ({"android_app_package": None}, ASSET_LINKS),
        ({"android_cert_fingerprints": []}, ASSET_LINKS),
    ],
)
async def test_404_envelope_when_unset(
    settings: Settings, unset: dict[str, object], path: str
) -> None:
    async with app_client(settings, **{**CONFIGURED, **unset}) as client:
        response = await client.get(path, follow_redirects=False)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["success"] is False
    assert body["error"]["type"] == "not_found"


async def test_unset_by_default(client: httpx.AsyncClient) -> None:
    for path in (AASA, ASSET_LINKS):
        response = await client.get(path)
        assert (response.status_code, response.json()["error"]["type"]) == (404, "not_found")


def test_settings_parse_comma_separated_values() -> None:
    loaded = load_settings(
        _env_file=None,
        environment="test",
        ios_app_ids=" ABCDE12345.dev.pagely.app , FGHIJ67890.dev.pagely.beta ",
        android_app_package=PACKAGE,
        android_cert_fingerprints=f"{FINGERPRINT.lower()},{OTHER_FINGERPRINT}",
    )
    assert loaded.ios_app_ids == APP_IDS
    assert loaded.android_cert_fingerprints == [FINGERPRINT, OTHER_FINGERPRINT]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ios_app_ids", "dev.pagely.app"),  # no team id
        ("ios_app_ids", "ABCDE.dev.pagely.app"),  # team id too short
        ("android_cert_fingerprints", "AB:CD"),  # too few pairs
        ("android_cert_fingerprints", FINGERPRINT.replace(":", "")),  # no colons
        ("android_cert_fingerprints", FINGERPRINT[:-2] + "ZZ"),  # not hex
        ("android_app_package", "pagely"),  # no dot
    ],
)
def test_settings_refuse_malformed_values(field: str, value: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_settings(_env_file=None, environment="test", **{field: value})


async def test_verify_page_hands_each_outcome_to_the_app(
    client: httpx.AsyncClient, resources: Resources, settings: Settings
) -> None:
    scheme = settings.app_scheme
    success = f'href="{scheme}://verify?status=ok"'
    user = await make_user(resources, verified=False)
    token = tokens.make_verify_token(settings, user.id, user.email)

    first = await client.get(f"/api/v1/auth/verify/{token}")
    assert first.status_code == 200
    assert success in first.text

    again = await client.get(f"/api/v1/auth/verify/{token}")
    assert f'href="{scheme}://verify?status=already"' in again.text
    assert success not in again.text

    invalid = await client.get("/api/v1/auth/verify/garbage")
    assert invalid.status_code == 400
    assert f'href="{scheme}://verify?status=invalid"' in invalid.text

    other = await make_user(resources, verified=False)
    late = tokens.make_verify_token(settings, other.id, other.email)
    clock.advance(timedelta(hours=settings.verify_token_hours + 1))
    expired = await client.get(f"/api/v1/auth/verify/{late}")
    assert expired.status_code == 400
    assert f'href="{scheme}://verify?status=expired"' in expired.text

    for failed in (invalid, expired):
        assert success not in failed.text
        assert "status=ok" not in failed.text
        assert "status=already" not in failed.text
        assert "://verified" not in failed.text
