"""The import contracts of ARCHITECTURE.md hold, and they can fail: a copy of the package with
one forbidden import planted in it is refused by `lint-imports`, naming the broken contract."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(source_root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the project's contracts, over the `pagely` package under
    `source_root` (first on the path, ahead of the installed one)."""
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")],
        cwd=source_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_its_contracts() -> None:
    result = _lint_imports(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        (
            "core/errors.py",
            "import pagely.catalog.books.service",
            "Layers: wiring, then features, then the platform",
        ),
        (
            "identity/service.py",
            "import pagely.catalog.reviews.service",
            "Layers: wiring, then features, then the platform",
        ),
        (
            "catalog/books/service.py",
            "import pagely.devtools.seed",
            "The application never imports development-only code",
        ),
        (
            "catalog/tags/service.py",
            "import pagely.catalog.books.service",
            "Catalog layers",
        ),
        (
            "catalog/books/router.py",
            "import sqlalchemy",
            "Routers speak HTTP",
        ),
    ],
)
def test_a_forbidden_import_fails_lint(
    tmp_path: Path, module: str, planted: str, contract: str
) -> None:
    copy = tmp_path / "src"
    shutil.copytree(
        ROOT / "src" / "pagely", copy / "pagely", ignore=shutil.ignore_patterns("__pycache__")
    )
    target = copy / "pagely" / module
    target.write_text(target.read_text() + f"\n{planted}  # planted by the test\n")
    result = _lint_imports(copy)
    assert result.returncode != 0, result.stdout
    assert f"{contract}" in result.stdout
    assert "BROKEN" in result.stdout
