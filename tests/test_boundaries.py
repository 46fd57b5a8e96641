"""Roles meet only through ``schemas`` and ``adapters``: no role module imports another role; only the
composition layer (``mailpulse``) wires them together."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROLES = ("ingest", "processors", "alerting", "analytics")
BELOW_ROLES = ("schemas", "adapters")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_role_imports_another_role_or_the_composition_layer() -> None:
    crossings = [
        f"{path.relative_to(ROOT)} imports {other}"
        for role in ROLES
        for path in sorted((ROOT / role).rglob("*.py"))
        for other in sorted(imported(path) & {*ROLES, "mailpulse"} - {role})
    ]
    assert crossings == []


def test_schemas_and_adapters_import_no_role() -> None:
    crossings = [
        f"{path.relative_to(ROOT)} imports {other}"
        for package in BELOW_ROLES
        for path in sorted((ROOT / package).rglob("*.py"))
        for other in sorted(imported(path) & {*ROLES, "mailpulse"})
    ]
    assert crossings == []
