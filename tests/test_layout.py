"""The suite's own layout: test modules share code only through tests.fixtures, so no test
module imports another, and neither the fixtures nor a conftest imports a test module."""

from __future__ import annotations

import ast
from importlib.util import resolve_name
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SHARED = "tests.fixtures"


def imported_modules(source: str, package: str) -> set[str]:
    """Every module that `source`, a module of `package`, imports (relative imports resolved;
    for `from x import name`, `x.name` too, as the name may be a submodule)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve_name("." * node.level + (node.module or ""), package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def forbidden_imports(source: str, package: str) -> list[str]:
    """The modules of the test suite other than tests.fixtures that `source` imports (the
    outermost only: `from tests.support import bearer` is `tests.support`)."""
    bad = {
        name
        for name in imported_modules(source, package)
        if name.startswith("tests.") and not (name == SHARED or name.startswith(SHARED + "."))
    }
    return sorted(name for name in bad if name.rpartition(".")[0] not in bad)


def test_test_modules_share_code_only_through_fixtures() -> None:
    offenders: dict[str, list[str]] = {}
    for path in sorted(TESTS.rglob("*.py")):
        package = ".".join(path.parent.relative_to(TESTS.parent).parts)
        if bad := forbidden_imports(path.read_text(), package):
            offenders[str(path.relative_to(TESTS.parent))] = bad
    assert offenders == {}


@pytest.mark.parametrize(
    ("source", "package", "refused"),
    [
        ("from tests.catalog.test_books import BOOKS", "tests.catalog",
         ["tests.catalog.test_books"]),
        ("import tests.catalog.test_books", "tests.outbox", ["tests.catalog.test_books"]),
        ("from tests import conftest", "tests", ["tests.conftest"]),
        ("from .test_books import book_body", "tests.catalog", ["tests.catalog.test_books"]),
        ("from ..conftest import asgi_client", "tests.fixtures", ["tests.conftest"]),
        ("from . import test_books", "tests.catalog", ["tests.catalog"]),
        ("def helper():\n    from tests.core import test_db\n", "tests", ["tests.core"]),
        ("from tests.fixtures.accounts import bearer\nfrom tests import fixtures", "tests", []),
        ("from .smtp import SmtpSink", "tests.fixtures", []),
        ("import testsuite\nfrom pagely.tests import helpers", "tests", []),
    ],
)  # fmt: skip
def test_the_guard_refuses_imports_of_test_modules(
    source: str, package: str, refused: list[str]
) -> None:
    assert forbidden_imports(source, package) == refused
