"""The poller's SQLite checkpoint: atomic writes, what survives a reopen, due and open lists, pruning."""

from __future__ import annotations

from pathlib import Path

import pytest

from poller.checkpoint import EMAILS, OPERATIONS, Checkpoint
from poller.decisions import Mark


def test_marks_and_high_water_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "poller.sqlite3"
    checkpoint = Checkpoint(path)
    assert checkpoint.high_water(EMAILS) is None
    checkpoint.record(
        EMAILS, [Mark("e1", "SENT", 10, 5, "op1"), Mark("e2", "OPENED", 11, 6, "op1")], 100.0, 6
    )
    checkpoint.record(EMAILS, [Mark("e1", "DELIVERED", 20, 5, "op1")], 200.0, 4)  # the mark never goes back
    checkpoint.record(OPERATIONS, [Mark("op1", "PROCESSING", 1, 5), Mark("op2", "COMPLETED", 2, 5)], 100.0, 5)
    checkpoint.close()
    reopened = Checkpoint(path)
    assert reopened.high_water(EMAILS) == 6 and reopened.high_water(OPERATIONS) == 5
    assert reopened.known(EMAILS, ["e1", "e2", "e9"]) == {
        "e1": Mark("e1", "DELIVERED", 20, 5, "op1"),
        "e2": Mark("e2", "OPENED", 11, 6, "op1"),
    }
    assert [m.id for m in reopened.open_operations()] == ["op1"]
    assert reopened.counts() == {"emails": 2, "unsettled": 1, "open_operations": 1}


def test_due_lists_unsettled_emails_not_looked_at_recently(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path / "c.sqlite3")
    checkpoint.record(EMAILS, [Mark("old", "SENT", 1, 1), Mark("done", "FAILED", 1, 1)], 100.0)
    checkpoint.record(EMAILS, [Mark("fresh", "DELIVERED", 1, 1)], 500.0)
    assert [m.id for m in checkpoint.due(checked_before=400.0)] == ["old"]
    assert [m.id for m in checkpoint.due(checked_before=600.0)] == ["old", "fresh"]


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path / "c.sqlite3")
    checkpoint.record(EMAILS, [Mark("e1", "SENT", 1, 1)], 1.0, 1)
    broken = Mark("e4", None, 1, 1)  # type: ignore[arg-type]  # a status SQLite refuses, mid-batch
    with pytest.raises(Exception, match="NOT NULL"):
        checkpoint.record(EMAILS, [Mark("e3", "SENT", 3, 3), broken], 2.0, 9)
    assert set(checkpoint.known(EMAILS, ["e1", "e3", "e4"])) == {"e1"}
    assert checkpoint.high_water(EMAILS) == 1


def test_prune_forgets_what_left_the_retention(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path / "c.sqlite3")
    checkpoint.record(
        EMAILS, [Mark("a", "SENT", 1, 100), Mark("b", "OPENED", 1, 100), Mark("c", "SENT", 1, 300)], 1.0
    )
    checkpoint.record(OPERATIONS, [Mark("op", "PROCESSING", 1, 100)], 1.0)
    assert checkpoint.prune(created_before_ms=200) == 1  # one unsettled email expired
    assert set(checkpoint.known(EMAILS, ["a", "b", "c"])) == {"c"}
    assert checkpoint.open_operations() == []
