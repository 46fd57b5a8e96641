"""The simulated Email API's resources: Email and Operation, each a planned list of timed statuses.

An email's whole lifecycle is drawn when it is created (``lifecycle.plan_email``); its state at any
API time ``t`` is the last planned transition at or before ``t``. So the resource a webhook carries,
the resource a list returns and the ground truth all come from the same plan and always agree.

``updatedAt`` is the time of the email's latest *status change*. Repeated opens of an OPENED email are
events (they leave in webhooks), not changes of the resource: ``updatedAt`` stays the first open. Hence
``updatedAt`` is always "since when the email has its current status", the value the ground truth
compares.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.status import EmailStatus, OperationStatus


def iso(value: datetime) -> str:
    """RFC 3339 with milliseconds and ``Z``, as the API writes times."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Address:
    address: str
    name: str | None = None

    def to_json(self) -> dict[str, str]:
        return {"address": self.address, **({"name": self.name} if self.name else {})}


@dataclass(frozen=True, slots=True)
class Transition:
    status: EmailStatus
    at: datetime


@dataclass(frozen=True, slots=True)
class Signals:
    """What an email's webhooks say besides its statuses (SendGrid format only)."""

    deferrals: tuple[datetime, ...] = ()  # attempt 1, 2, ... while SENT
    blocked: bool = False
    bounce_classification: str | None = None  # of its bounce
    spam_report: datetime | None = None
    unsubscribe: datetime | None = None

    def times(self) -> tuple[datetime, ...]:
        return (*self.deferrals, *(t for t in (self.spam_report, self.unsubscribe) if t is not None))


@dataclass(frozen=True, slots=True)
class Email:
    """One message to one recipient (or one received mail: status INBOUND, no operation)."""

    id: str
    operation_id: str | None
    sender: Address
    recipient: Address
    tags: dict[str, str]
    created_at: datetime
    scheduled_for: datetime | None
    transitions: tuple[Transition, ...]  # status changes, strictly increasing in time
    extra_opens: tuple[datetime, ...] = ()  # opens after the first one (no status change)
    signals: Signals = field(default_factory=Signals)  # deferrals, block, spam report, unsubscribe
    _times: tuple[datetime, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_times", tuple(t.at for t in self.transitions))

    def current(self, now: datetime) -> Transition | None:
        """The status in force at ``now`` (None before the email exists)."""
        index = bisect.bisect_right(self._times, now)
        return self.transitions[index - 1] if index else None

    @property
    def final(self) -> Transition:
        return self.transitions[-1]

    @property
    def settles_at(self) -> datetime:
        """After this time nothing about the email changes or is reported any more."""
        return max(self.final.at, *self.extra_opens, *self.signals.times())

    def opens(self, now: datetime) -> int:
        first = any(t.status is EmailStatus.OPENED and t.at <= now for t in self.transitions)
        return int(first) + sum(1 for at in self.extra_opens if at <= now) if first else 0

    def resource(self, now: datetime) -> dict[str, Any]:
        """The Email resource as the API shows it at ``now`` (the email must exist by then)."""
        current = self.current(now)
        assert current is not None, "email does not exist yet"
        return {
            "id": self.id,
            "operationId": self.operation_id,
            "from": self.sender.to_json(),
            "to": [self.recipient.to_json()],
            "status": current.status.value,
            "tags": dict(self.tags),
            "related": [],
            "scheduledFor": iso(self.scheduled_for) if self.scheduled_for else None,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(current.at),
            "deletedAt": None,
        }


@dataclass(frozen=True, slots=True)
class OperationTransition:
    status: OperationStatus
    at: datetime


_STAT_KEYS = ("queued", "sent", "scheduled", "delivered", "opened", "undelivered", "failed", "canceled")


@dataclass(frozen=True, slots=True)
class Operation:
    """One accepted send request and the emails it made."""

    id: str
    created_at: datetime
    scheduled_for: datetime | None
    email_ids: tuple[str, ...]
    transitions: tuple[OperationTransition, ...]

    def current(self, now: datetime) -> OperationTransition | None:
        found = None
        for transition in self.transitions:
            if transition.at > now:
                break
            found = transition
        return found

    @property
    def settles_at(self) -> datetime:
        return self.transitions[-1].at

    def resource(self, now: datetime, emails: Sequence[Email]) -> dict[str, Any]:
        current = self.current(now)
        assert current is not None, "operation does not exist yet"
        counts: Counter[str] = Counter()
        for email in emails:
            state = email.current(now)
            if state is not None:
                counts[state.status.value.lower()] += 1
        return {
            "id": self.id,
            "status": current.status.value,
            "stats": {"total": len(self.email_ids), **{key: counts[key] for key in _STAT_KEYS}},
            "scheduledFor": iso(self.scheduled_for) if self.scheduled_for else None,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(current.at),
        }
