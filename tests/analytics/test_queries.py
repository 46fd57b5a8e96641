"""analytics/queries.py splices no request value into SQL text (its purity: tests/test_purity.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analytics import queries as q


def test_every_request_value_is_bound_never_spliced() -> None:
    hostile = "x' OR '1'='1"
    params = {name: [hostile if name != "tag" else f"k={hostile}"] for name in q.FILTERS}
    # A mailbox provider must be one of the table's ids: anything else is refused before any SQL.
    with pytest.raises(q.ParamErrors, match="mailbox_provider"):
        q.parse_window(params, datetime(2026, 11, 20, tzinfo=UTC))
    params["mailbox_provider"] = ["other"]
    window = q.parse_window(params, datetime(2026, 11, 20, tzinfo=UTC))
    for sql in (
        q.message_counts_sql("db", window),
        q.message_counts_sql("db", window, key="recipient_domain"),
        q.message_counts_sql("db", window, key="tag"),
        q.message_counts_sql("db", window, bucket=300),
        q.latency_sql("db", window, "deliver", 300),
        q.latencies_sql("db", window),
    ):
        assert hostile not in sql.text
        assert hostile in sql.parameters.values()
        assert sql.parameters["f_mailbox_provider"] == "other"  # the provider filter is bound too
        assert "{f_mailbox_provider:String}" in sql.text
