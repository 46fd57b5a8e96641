"""docs/configuration.md's settings table is the settings model's, and every setting explains itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mailpulse.config_doc import END, START, settings_table
from mailpulse.settings import Settings

README = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_readme_table_matches_the_settings_model() -> None:
    text = README.read_text()
    table = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert table == settings_table(), "run `.venv/bin/mailpulse config --write-readme`"


def test_every_setting_is_described() -> None:
    undocumented = [name for name, f in Settings.model_fields.items() if not f.description]
    assert undocumented == []


def test_a_bad_setting_is_named_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPULSE_PARTITIONS", "zero")
    with pytest.raises(ValidationError) as exc:
        Settings()
    assert "partitions" in str(exc.value)
