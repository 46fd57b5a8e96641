"""The layers of the tree, lowest first; a package imports only from its own layer's rules below:

- ``schemas``: the pure event model and the rules every side shares; imports no other package;
- ``storage``: ClickHouse tables and migrations as SQL text; imports ``schemas``;
- ``adapters``: Kafka, ClickHouse and HTTP plumbing every role may use; imports ``schemas`` and ``storage``;
- roles (``ingest``, ``poller``, ``processors``, ``alerting``, ``analytics``, ``simulator``): import the
  layers below, never each other;
- composition (``mailpulse``, ``bench``): the command line and the composition roots, the only code that
  imports roles and wires them together.

Imports are read from the syntax tree, wherever they are (in functions and TYPE_CHECKING blocks too).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.imports import ROOT, imported_modules, imported_packages

ROLES = frozenset({"ingest", "poller", "processors", "alerting", "analytics", "simulator"})
COMPOSITION = frozenset({"mailpulse", "bench"})
BELOW_ROLES = frozenset({"schemas", "storage", "adapters"})
PACKAGES = BELOW_ROLES | ROLES | COMPOSITION

# What each package may import of the project (itself included).
MAY_IMPORT: dict[str, frozenset[str]] = {
    "schemas": frozenset({"schemas"}),
    "storage": frozenset({"schemas", "storage"}),
    "adapters": BELOW_ROLES,
    **{role: BELOW_ROLES | {role} for role in ROLES},
    **{layer: PACKAGES for layer in COMPOSITION},
}


def crossings(package: str, allowed: frozenset[str]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {other}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for other in sorted((imported_packages(path) & PACKAGES) - allowed)
    ]


def test_every_top_level_package_has_a_layer() -> None:
    found = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests"}
    assert found == PACKAGES


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_a_package_imports_only_its_own_layer_and_those_below(package: str) -> None:
    assert crossings(package, MAY_IMPORT[package]) == []


def test_the_check_sees_a_crossing(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f() -> None:\n    from ingest.app import create_app\n")
    assert imported_packages(source) == {"ingest"}


def test_no_test_module_imports_another() -> None:
    """Shared test code lives in helper modules, so moving or trimming one test breaks no other."""
    found = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for module in sorted(imported_modules(path))
        if module.startswith("tests.") and module.rsplit(".", 1)[-1].startswith("test_")
    ]
    assert found == []


# Deployment-file checks keep their one probe test that starts the roles' apps beside the file checks.
MARKED_OUTSIDE_INTEGRATION = {"tests/infra/test_deployment_files.py"}


def test_kafka_and_clickhouse_tests_live_under_integration() -> None:
    marked = {
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "tests").rglob("test_*.py"))
        if "integration" not in path.relative_to(ROOT).parts
        and re.search(r"pytest\.mark\.(kafka|clickhouse)\b", path.read_text())
    }
    assert marked == MARKED_OUTSIDE_INTEGRATION
