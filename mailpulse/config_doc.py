"""docs/configuration.md's settings table, generated from the settings model (a test keeps them in sync)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_core import PydanticUndefined

from mailpulse.settings import Settings

START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def _default(value: object) -> str:
    if value is None or value is PydanticUndefined:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def settings_table() -> str:
    prefix = Settings.model_config.get("env_prefix", "")
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{prefix}{name.upper()}` | {_default(field.default)} | {meaning} |")
    return "\n".join(rows)


def update_table(page: Path) -> bool:
    """Rewrite the table between the markers; True when the file changed."""
    text = page.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{START}\n{settings_table()}\n{END}{tail}"
    if updated != text:
        page.write_text(updated)
    return updated != text
