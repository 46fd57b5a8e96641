"""What a source file imports, read from its syntax tree (nothing is imported to find out)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` names in an import statement, in full (``a.b`` for ``from a.b import c``),
    wherever the statement is (functions and TYPE_CHECKING blocks included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def imported_packages(path: Path) -> set[str]:
    """The top-level packages ``path`` imports from."""
    return {name.split(".")[0] for name in imported_modules(path)}
