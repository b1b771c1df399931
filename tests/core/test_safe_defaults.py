"""Defaults that are safe outside a laptop: production unless said otherwise, no signing key in
the source, and a development key of the checkout's own under PAGELY_HOME."""

from __future__ import annotations

import ast
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pagely.cli import services
from pagely.devtools.devkey import KEY_FILE, dev_jwt_secret
from pagely.settings import ConfigError, Settings, get_settings, load_settings

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "pagely"


def test_the_default_environment_is_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    assert Settings.model_fields["environment"].default == "production"
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        load_settings(database_url="postgresql+asyncpg://db/x", redis_url="redis://r/0",
                      _env_file=None)  # fmt: skip
    settings = load_settings(jwt_secret="k" * 48, _env_file=None)
    assert settings.environment == "production"
    assert not settings.is_dev_or_test


@pytest.mark.parametrize("command", ["serve", "worker", "beat"])
def test_a_process_with_only_service_urls_refuses_to_start(command: str, tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/pagely",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pagely.cli", command],
        env=env,
        cwd=tmp_path,  # no developer .env is read
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "JWT_SECRET" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


# Phrases a hard-coded development key is made of.
_KEY_PHRASE = re.compile(
    r"(signing|secret|jwt|dev|development)[-_]?key|not[-_]for[-_]production|development[-_]only",
    re.IGNORECASE,
)
# Calls that take a signing key, and where: the position of the argument, or its keyword.
_KEYED_CALLS = {
    "encode": (1, "key"),
    "decode": (1, "key"),
    "URLSafeTimedSerializer": (0, "secret_key"),
    "URLSafeSerializer": (0, "secret_key"),
    "Serializer": (0, "secret_key"),
    "TimestampSigner": (0, "secret_key"),
    "Signer": (0, "secret_key"),
}


def _literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _signing_literals(path: Path) -> list[str]:
    """String literals that look like a key, or that are given where a signing key goes."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        value = _literal(node)
        if value is not None and _KEY_PHRASE.search(value):
            found.append(value)
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = getattr(getattr(func, "value", None), "id", "")
            if name in ("encode", "decode") and owner != "jwt":
                continue  # str.encode and friends
            if name in _KEYED_CALLS:
                position, keyword = _KEYED_CALLS[name]
                args = [node.args[position]] if len(node.args) > position else []
                args += [k.value for k in node.keywords if k.arg == keyword]
                found += [v for v in map(_literal, args) if v is not None]
    return found


def test_no_signing_key_is_written_in_the_source() -> None:
    found = {
        f"{path.relative_to(PACKAGE)}: {value!r}"
        for path in PACKAGE.rglob("*.py")
        for value in _signing_literals(path)
    }
    assert not found


def test_jwt_key_returns_no_literal() -> None:
    tree = ast.parse((PACKAGE / "settings.py").read_text())
    (jwt_key,) = [
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "jwt_key"
    ]
    returns = [n for n in ast.walk(jwt_key) if isinstance(n, ast.Return)]
    assert returns
    assert not [r for r in returns if isinstance(r.value, ast.Constant)]


def test_without_a_secret_development_keys_are_random_per_process() -> None:
    # Outside the CLI (which exports the checkout's key) nothing predictable signs tokens.
    code = (
        "from pagely.settings import load_settings; "
        "print(load_settings(environment='test', jwt_secret=None, _env_file=None).jwt_key())"
    )
    env = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    keys = {
        subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(keys) == 2
    assert all(len(key) >= 32 for key in keys)


def test_the_development_key_is_made_once_per_home(tmp_path: Path) -> None:
    first = dev_jwt_secret(tmp_path / "a")
    assert len(first) >= 32
    assert dev_jwt_secret(tmp_path / "a") == first
    assert (tmp_path / "a" / KEY_FILE).read_text().strip() == first
    assert stat.S_IMODE((tmp_path / "a" / KEY_FILE).stat().st_mode) == 0o600
    assert dev_jwt_secret(tmp_path / "b") != first


def test_the_cli_signs_with_the_key_under_pagely_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Settings
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("JWT_SECRET", "")  # restored afterwards, whatever services() exports
    keys = []
    for home in ("one", "one", "two"):
        monkeypatch.setenv("PAGELY_HOME", str(tmp_path / home))
        monkeypatch.setenv("JWT_SECRET", "")
        get_settings.cache_clear()
        with services(smtp=False) as cli_settings:
            keys.append(cli_settings.jwt_key())
            assert os.environ["JWT_SECRET"] == keys[-1]  # what its children inherit
    get_settings.cache_clear()
    assert keys[0] == keys[1] == (tmp_path / "one" / KEY_FILE).read_text().strip()
    assert keys[2] != keys[0]


def test_production_never_writes_a_development_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("JWT_SECRET", "k" * 48)
    monkeypatch.setenv("PAGELY_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        with services(smtp=False) as cli_settings:
            assert cli_settings.jwt_key() == "k" * 48
    finally:
        get_settings.cache_clear()
    assert not (tmp_path / KEY_FILE).exists()
