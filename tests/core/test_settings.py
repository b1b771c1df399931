from __future__ import annotations

import pytest

from pagely.settings import ConfigError, load_settings

STRONG = "k" * 48


def test_production_refuses_a_missing_jwt_secret() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environment="production", jwt_secret=None, _env_file=None)
    message = str(info.value)
    assert "JWT_SECRET" in message
    assert "\n" not in message


@pytest.mark.parametrize("secret", ["change-me", "secret", "short-but-real"])
def test_production_refuses_placeholder_or_short_secrets(secret: str) -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        load_settings(environment="production", jwt_secret=secret, _env_file=None)


def test_production_refuses_wildcard_cors() -> None:
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        load_settings(environment="production", jwt_secret=STRONG, cors_origins="*", _env_file=None)


def test_production_accepts_a_strong_secret() -> None:
    settings = load_settings(environment="production", jwt_secret=STRONG, _env_file=None)
    assert settings.jwt_key() == STRONG


@pytest.mark.parametrize("environment", ["development", "test"])
def test_development_and_test_run_without_a_secret(environment: str) -> None:
    settings = load_settings(environment=environment, jwt_secret=None, _env_file=None)
    assert len(settings.jwt_key()) >= 32


def test_lists_are_read_from_comma_separated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.test, https://b.test")
    monkeypatch.setenv("ALLOWED_HOSTS", "api.pagely.test,*.pagely.test")
    settings = load_settings(_env_file=None)
    assert settings.cors_origins == ["https://a.test", "https://b.test"]
    assert settings.allowed_hosts == ["api.pagely.test", "*.pagely.test"]


def test_a_missing_service_url_is_explained() -> None:
    settings = load_settings(database_url=None, _env_file=None)
    with pytest.raises(ConfigError, match="DATABASE_URL is not set"):
        settings.require("database_url")


def test_env_example_lists_every_setting() -> None:
    from pathlib import Path

    from pagely.settings import Settings

    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    listed = {
        line.split("=", 1)[0].strip()
        for line in example.splitlines()
        if "=" in line and not line.startswith("#")
    }
    missing = {name.upper() for name in Settings.model_fields} - listed
    assert not missing, f".env.example lacks {sorted(missing)}"
