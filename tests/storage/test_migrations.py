"""Released migrations are frozen: they read no live code (only the migration runner, its SQL helpers and
earlier migrations), and the SQL each one runs is what it ran when released."""

from __future__ import annotations

import re
from pathlib import Path

from storage import migrations
from storage.migrations import MIGRATIONS, SchemaOptions
from storage.migrations.m0013_signals import STATUS_BITS as STORED_STATUS_BITS
from storage.tables import STATUS_BITS
from tests.imports import imported_modules

MIGRATIONS_DIR = Path(migrations.__file__).parent
PROJECT = frozenset(
    ("schemas", "storage", "adapters", "ingest", "poller", "processors", "alerting", "analytics", "simulator")
) | {"bench", "mailpulse"}

# The checksum of each released migration's SQL on a single server and on a cluster: a change here is an
# edit of a released migration, which `migrate` would refuse to treat as applied.
RELEASED: dict[int, tuple[str, str]] = {
    1: ("65d304ef5df3c692", "0618bbd4e0b3c206"),
    2: ("028b5e4564a7d16e", "62c28d74766a4901"),
    3: ("0d98c65b581e301c", "bc50a117e38fd70e"),
    4: ("8f372005df6d63dd", "3e57e9065bb2bec3"),
    5: ("59259f910762862e", "869fb5be9f30fc41"),
    6: ("596144a74f3920c4", "fbdda242df912057"),
    7: ("4648add97c1f112d", "6f6f564365d31093"),
    8: ("5c6aee1cf71e4af3", "4a01a5a704ad6422"),
    9: ("78df4bf6eeef1f5e", "e1ebea190238d541"),
    10: ("c1b6d392f66b7e3e", "2b2aa33803e482b6"),
    11: ("dc656b2249a14eaa", "31c5b2407f217959"),
    12: ("6325af591c7a6f4d", "9f2aa11f69ca07fa"),
    13: ("e72f17fdde6b1c65", "7bd4fa67081e800d"),
}


def allowed(module: str, version: int) -> bool:
    """The runner, its SQL helpers, or a migration released before ``version``."""
    if module in ("storage.migrations", "storage.migrations.ddl"):
        return True
    earlier = re.fullmatch(r"storage\.migrations\.m(\d{4})_\w+", module)
    return earlier is not None and int(earlier.group(1)) < version


def test_migrations_import_nothing_live() -> None:
    reads = [
        f"{path.name} imports {module}"
        for path in sorted(MIGRATIONS_DIR.glob("m[0-9][0-9][0-9][0-9]_*.py"))
        for module in sorted(imported_modules(path))
        if module.split(".")[0] in PROJECT and not allowed(module, int(path.name[1:5]))
    ]
    assert reads == []


def test_the_sql_helpers_import_nothing_of_the_project() -> None:
    project = {m for m in imported_modules(MIGRATIONS_DIR / "ddl.py") if m.split(".")[0] in PROJECT}
    assert project == set()


def test_released_migrations_run_the_sql_they_were_released_with() -> None:
    for migration in MIGRATIONS:
        if migration.version in RELEASED:
            single = migration.checksum(SchemaOptions("mailpulse"))
            cluster = migration.checksum(SchemaOptions("mailpulse", "prod"))
            assert (single, cluster) == RELEASED[migration.version], migration.name


def test_live_status_bits_are_the_stored_ones() -> None:
    assert STATUS_BITS == STORED_STATUS_BITS
