"""mailpulse's view of the emails against the simulator's ground truth. Pure.

"Reaching the ground truth" means, for every email the simulator has: mailpulse has a message with the
same id, its current status is the simulator's, and the first time mailpulse saw that status is the
time the email got it (its ``updatedAt``), to the millisecond; and mailpulse has no email the
simulator does not. Intermediate statuses are not compared: when a status's webhook was dropped and no
poll happened while the email had it, nothing can recover it (the API only shows the current status).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from schemas.status import EmailStatus, highest
from simulator.core import EmailTruth


@dataclass(frozen=True, slots=True)
class Seen:
    """One message as mailpulse has it: current status and the first time of that status."""

    status: str
    since: datetime | None


@dataclass(slots=True)
class Comparison:
    emails: int = 0
    matched: int = 0
    missing: list[str] = field(default_factory=list)  # in the truth, not in mailpulse
    wrong_status: list[tuple[str, str, str]] = field(default_factory=list)  # id, truth, mailpulse
    wrong_time: list[tuple[str, datetime, datetime | None]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # in mailpulse, unknown to the simulator

    @property
    def ok(self) -> bool:
        return self.matched == self.emails and not self.unexpected

    def describe(self) -> str:
        parts = [f"{self.matched}/{self.emails} emails match"]
        for name, items in (
            ("missing", self.missing),
            ("wrong status", self.wrong_status),
            ("wrong time", self.wrong_time),
            ("unexpected", self.unexpected),
        ):
            if items:
                parts.append(f"{len(items)} {name} (e.g. {items[0]})")
        return "; ".join(parts)


def compare(truth: Iterable[EmailTruth], seen: Mapping[str, Seen]) -> Comparison:
    result = Comparison()
    expected = set()
    for email in truth:
        expected.add(email.id)
        result.emails += 1
        got = seen.get(email.id)
        if got is None:
            result.missing.append(email.id)
        elif got.status != email.status.value:
            result.wrong_status.append((email.id, email.status.value, got.status))
        elif got.since != email.since:
            result.wrong_time.append((email.id, email.since, got.since))
        else:
            result.matched += 1
    result.unexpected = sorted(set(seen) - expected)
    return result


def status_counts(truth: Iterable[EmailTruth]) -> Counter[str]:
    return Counter(t.status.value for t in truth)


def webhook_view(truth: Iterable[EmailTruth], delivered: Mapping[str, set[str]]) -> Counter[str]:
    """Emails per status as the delivered webhooks alone tell it ("(none)": no webhook arrived)."""
    counts: Counter[str] = Counter()
    for email in truth:
        statuses = {EmailStatus(s) for s in delivered.get(email.id, set())}
        current = highest(statuses)
        counts[current.value if current else "(none)"] += 1
    return counts


def webhook_misses(truth: Iterable[EmailTruth], delivered: Mapping[str, set[str]]) -> int:
    """Emails whose current status never reached the receiver by webhook."""
    return sum(1 for t in truth if t.status.value not in delivered.get(t.id, set()))
