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

from pathlib import Path

import pytest

from tests.imports import ROOT, imported_packages

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
