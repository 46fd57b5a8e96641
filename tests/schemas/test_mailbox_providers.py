"""The mailbox provider table: lookups, its integrity, the SQL expression (on real chDB) giving the same
answer as Python, and the documented table equal to the module's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapters.clickhouse import ClickHouseStore
from schemas.mailbox_providers import (
    DOMAINS,
    NAMES,
    OTHER,
    PROVIDERS,
    label,
    mailbox_provider,
    sql_mailbox_provider,
)

DOCS = Path(__file__).parents[2] / "docs" / "mailbox-providers.md"


@pytest.mark.parametrize(
    ("domain", "provider"),
    [
        ("gmail.com", "google"), ("googlemail.com", "google"), ("GMail.COM", "google"),
        ("hotmail.co.uk", "microsoft"), ("outlook.com", "microsoft"), ("live.com", "microsoft"),
        ("yahoo.com", "yahoo"), ("aol.com", "yahoo"), ("ymail.com", "yahoo"), ("att.net", "yahoo"),
        ("icloud.com", "apple"), ("me.com", "apple"), ("mac.com", "apple"),
        ("web.de", "gmx"), ("gmx.net", "gmx"), ("mail.ru", "mailru"), ("yandex.ru", "yandex"),
        ("orange.fr", "orange"), ("comcast.net", "comcast"), ("qq.com", "tencent"), ("163.com", "netease"),
        ("naver.com", "naver"),
        ("yahoo.co.jp", OTHER), ("mail.gmail.com", OTHER), ("example.com", OTHER), ("", OTHER), (None, OTHER),
    ],
)  # fmt: skip
def test_lookup(domain: str | None, provider: str) -> None:
    assert mailbox_provider(domain) == provider


def test_the_table_is_consistent() -> None:
    listed = [d for _, domains in PROVIDERS.values() for d in domains]
    assert len(listed) == len(set(listed)) == len(DOMAINS), "a domain under two providers"
    assert all(d == d.lower().strip() for d in listed)
    assert OTHER not in PROVIDERS and NAMES[-1] == OTHER
    assert {"google", "microsoft", "yahoo", "apple"} <= set(PROVIDERS)
    assert label("google") == "Google (Gmail)" and label(OTHER) == label("nope") == "Other"


def test_the_sql_expression_maps_as_python_does(store: ClickHouseStore) -> None:
    domains = [*DOMAINS, "example.com", "yahoo.co.jp", "", "gmail.com.evil"]
    expression = sql_mailbox_provider("d")
    rows = store.query(
        f"SELECT d, {expression} FROM (SELECT arrayJoin({{ds:Array(String)}}) AS d)", {"ds": domains}
    )
    assert dict(rows) == {d: mailbox_provider(d) for d in domains}


def test_a_domain_that_is_not_one_never_reaches_sql(monkeypatch: pytest.MonkeyPatch) -> None:
    import schemas.mailbox_providers as mp

    monkeypatch.setattr(mp, "DOMAINS", {**DOMAINS, "x'); DROP TABLE t; --": "google"})
    with pytest.raises(ValueError, match="not a domain"):
        mp.sql_mailbox_provider("d")


def test_the_documented_table_is_the_module_table() -> None:
    rows = re.findall(r"^\| `([a-z-]+)` \| [^|]+ \| ([^|]+) \|$", DOCS.read_text(), re.MULTILINE)
    documented = {key: tuple(d.strip() for d in domains.split(",")) for key, domains in rows if key != OTHER}
    assert documented == {key: domains for key, (_, domains) in PROVIDERS.items()}
