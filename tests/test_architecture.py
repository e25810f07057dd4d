"""The shape docs/architecture.md draws, checked from the source: a lower app never imports a higher one."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(package: str) -> dict[str, set[str]]:
    """Every module each file of `package` imports (migrations left out: Django writes them)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(("lower", "higher"), [("payments", "checkout")])
def test_a_lower_app_never_imports_a_higher_one(lower, higher):
    offenders = {
        path: sorted(name for name in names if name == higher or name.startswith(f"{higher}."))
        for path, names in imported_modules(lower).items()
    }
    assert {path: names for path, names in offenders.items() if names} == {}
