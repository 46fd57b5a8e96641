"""`mailpulse sql`: a query with its own FORMAT clause is passed through and printed as ClickHouse
formats it; without one the answer stays TSV with a header."""

from __future__ import annotations

import pytest

from mailpulse.sqltext import own_format


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("SELECT 1 FORMAT TSV", "TSV"),
        ("SELECT 1 format JSONEachRow ;; \n", "JSONEachRow"),
        ("SELECT 1\nFORMAT CSVWithNames;", "CSVWithNames"),
        ("SELECT 'x FORMAT TSV'", None),
        ("SELECT 1 -- FORMAT TSV", None),
        ("SELECT 1 /* FORMAT TSV */", None),
        ("SELECT format('{}', 'a') AS format", None),
        ("SELECT * FROM (SELECT 1 FORMAT TSV)", None),
        ("SELECT 'it''s' AS s FORMAT JSON", "JSON"),
        ("SELECT 1", None),
    ],
)
def test_own_format(query: str, name: str | None) -> None:
    assert own_format(query) == name
