"""The notification outbox: the ``alert_outbox`` table, so no alert is lost to a failed send or a restart.

Every transition is queued for every channel before it is sent; each attempt and its outcome is
written afterwards. A delivery stays pending (and is retried at every later evaluation) until it is
delivered or, past the expiry, given up with an ``expired`` row, an error log and a metric. A crash
between a send and its record sends it again after the restart: at least once, never lost.

Blocking (clickhouse-connect): call it from a thread when on an event loop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import orjson

from adapters.clickhouse import ClickHouseStore
from alerting.state_machine import Notification

OUTBOX_COLUMNS = (
    "at", "rule", "key", "state", "channel", "attempt", "outcome", "recorded_at", "notification", "error",
)  # fmt: skip
Outcome = Literal["queued", "failed", "delivered", "expired"]


@dataclass(frozen=True)
class Delivery:
    """One notification due on one channel, and how many sends were tried so far."""

    note: Notification
    channel: str
    attempts: int = 0


@dataclass(frozen=True)
class Step:
    delivery: Delivery
    outcome: Outcome
    error: str = ""

    @property
    def attempt(self) -> int:
        """Queued and expired rows keep the count so far; a send is attempt count + 1."""
        sent = self.outcome in ("failed", "delivered")
        return self.delivery.attempts + 1 if sent else self.delivery.attempts


def note_json(note: Notification) -> bytes:
    fields = dict(note.__dict__)
    fields["at"] = note.at.astimezone(UTC).isoformat()
    return orjson.dumps(fields)


def note_from_json(text: str) -> Notification:
    fields = orjson.loads(text)
    fields["at"] = datetime.fromisoformat(fields["at"])
    return Notification(**fields)


class Outbox:
    def __init__(self, store: ClickHouseStore) -> None:
        self._store = store

    def queue(self, deliveries: Iterable[Delivery], now: datetime) -> None:
        """These deliveries become pending (written before anything is sent)."""
        self.record([Step(d, "queued") for d in deliveries], now)

    def record(self, steps: Sequence[Step], now: datetime) -> None:
        rows = [
            (n.at, n.rule, n.key, n.state, s.delivery.channel, s.attempt, s.outcome, now,
             note_json(n).decode(), s.error[:1000])
            for s in steps
            for n in (s.delivery.note,)
        ]  # fmt: skip
        if rows:
            # The token names the steps, not when they were written: a retried insert adds nothing.
            names = "|".join(f"{r[0].isoformat()}/{r[1]}/{r[2]}/{r[3]}/{r[4]}/{r[5]}/{r[6]}" for r in rows)
            token = hashlib.blake2b(names.encode(), digest_size=16).hexdigest()
            self._store.insert("alert_outbox", OUTBOX_COLUMNS, rows, f"alert_outbox|{token}")

    def pending(self, limit: int = 10_000) -> list[Delivery]:
        """Deliveries neither delivered nor expired, oldest transition first (a key's firing before
        its resolve)."""
        rows = self._store.query(
            f"SELECT any(notification), channel, max(attempt) FROM {self._store.database}.alert_outbox"
            " GROUP BY rule, key, state, at, channel"
            " HAVING countIf(outcome IN ('delivered', 'expired')) = 0"
            " ORDER BY at, rule, key, channel LIMIT {limit:UInt32}",
            {"limit": limit},
        )
        return [Delivery(note_from_json(text), str(channel), int(tried)) for text, channel, tried in rows]
