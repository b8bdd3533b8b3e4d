"""Architectural rules as tests (DESIGN section 7, STYLE conventions 1 and 8)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from radledger.core import merkle

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "radledger"
CORE_ALLOWED = {"radledger.core", "radledger.errors", "cryptography", "__future__"}
STDLIB_FORBIDDEN_IN_CORE = {
    "sqlite3", "os", "io", "pathlib", "socket", "subprocess", "time", "datetime", "random",
    "secrets", "shutil", "tempfile", "urllib", "http", "multiprocessing", "threading",
}
THIRD_PARTY_FORBIDDEN_IN_CORE = {"pydicom", "pynetdicom", "fastapi", "psycopg", "typer", "rich"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


CORE_FILES = sorted((PACKAGE / "core").glob("*.py"))


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_is_pure(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        assert top not in STDLIB_FORBIDDEN_IN_CORE, f"{path.name} imports {name} (I/O or clock)"
        assert top not in THIRD_PARTY_FORBIDDEN_IN_CORE, f"{path.name} imports {name}"
        if top == "radledger":
            assert any(name == a or name.startswith(a + ".") for a in CORE_ALLOWED), (
                f"{path.name} imports {name}: core may import only core and errors"
            )


def test_core_rules_see_files() -> None:
    # guards against the walk silently finding nothing
    assert len(CORE_FILES) >= 8


def test_only_dicom_imports_pydicom() -> None:
    for path in PACKAGE.rglob("*.py"):
        if "dicom" in path.relative_to(PACKAGE).parts[:1]:
            continue
        bad = {n for n in _imports(path) if n.split(".")[0] in {"pydicom", "pynetdicom"}}
        assert not bad, f"{path} imports {bad}; only radledger/dicom may"


def test_modules_stay_small() -> None:
    big = {p.name: n for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 600}
    assert not big, f"modules over 600 lines, split by concept: {big}"


def test_public_merkle_api() -> None:
    for name in ("leaf_hash", "node_hash", "root", "verify_inclusion", "verify_consistency"):
        assert callable(getattr(merkle, name))
