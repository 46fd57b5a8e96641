"""The simulated Email API account: accepts send requests, lists and fetches resources, reports what
happens (for webhooks) and knows the ground truth. Pure: time comes from the injected ``SimClock``,
randomness from one seeded ``random.Random``.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from schemas.status import EmailStatus, OperationStatus
from simulator.clock import SimClock
from simulator.lifecycle import Outcomes, Plan, plan_email, plan_inbound, plan_operation, plan_signals
from simulator.model import Address, Email, Operation, Transition
from simulator.paging import Key, ListOrder, ListQuery, select
from simulator.validation import SendRequest

RETENTION = timedelta(days=7)  # the Email API keeps records 7 days
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
EMAIL_STATUSES = frozenset(s.value for s in EmailStatus)
OPERATION_STATUSES = frozenset(s.value for s in OperationStatus)


class HappeningKind(StrEnum):
    EMAIL = "email"  # an email changed status
    OPEN = "open"  # an OPENED email was opened again
    DEFERRED = "deferred"  # a delivery attempt was deferred (SendGrid webhooks only)
    SPAM_REPORT = "spamreport"  # the recipient reported the email as spam (SendGrid webhooks only)
    UNSUBSCRIBE = "unsubscribe"  # the recipient unsubscribed (SendGrid webhooks only)
    OPERATION = "operation"  # an operation changed status


@dataclass(frozen=True, slots=True, order=True)
class Happening:
    """Something the API reports by webhook, at API time ``at``."""

    at: datetime
    seq: int
    kind: HappeningKind
    id: str


@dataclass(frozen=True, slots=True)
class EmailTruth:
    """What the simulator knows about one email at a moment: the ground truth mailpulse must reach."""

    id: str
    operation_id: str | None
    status: EmailStatus
    since: datetime  # when the email got its current status (= its updatedAt)
    created_at: datetime
    opens: int
    transitions: tuple[Transition, ...]  # every status it had so far
    deferrals: int = 0  # deferred attempts so far
    blocked: bool = False  # its bounce (so far) is a block
    bounce_classification: str | None = None  # of its bounce so far
    spam_reported: bool = False
    unsubscribed: bool = False


class Simulator:
    def __init__(
        self,
        clock: SimClock,
        outcomes: Outcomes | None = None,
        seed: int = 0,
        retention: timedelta = RETENTION,
        order: ListOrder = ListOrder.ASCENDING,
    ) -> None:
        self.clock = clock
        self.order = order  # how lists are ordered (clients must not depend on it)
        self.outcomes = outcomes or Outcomes()
        self.rng = random.Random(seed)
        # Signals draw from their own stream: the statuses planned for a seed do not depend on them.
        self.signal_rng = random.Random(f"signals-{seed}")
        self.retention = retention
        self.emails: dict[str, Email] = {}
        self.operations: dict[str, Operation] = {}
        self._email_keys: list[Key] = []
        self._operation_keys: list[Key] = []
        self._keys_by_operation: dict[str, list[Key]] = {}
        self._happenings: list[Happening] = []
        self._seq = itertools.count()
        self.settles_at = clock.now()  # after this nothing changes any more

    def _new_id(self, prefix: str) -> str:
        return prefix + "".join(self.rng.choices(_ID_ALPHABET, k=26))

    # ------------------------------------------------------------------ creating

    def accept(self, request: SendRequest) -> Operation:
        """Create the operation and one email per recipient, with their whole planned lifecycles."""
        now = self.clock.now()
        operation_id = self._new_id("comms_operation_")
        plans = [plan_email(self.rng, self.outcomes, now, request.send_at) for _ in request.recipients]
        emails = [
            Email(
                id=self._new_id("comms_email_"),
                operation_id=operation_id,
                sender=request.sender,
                recipient=Address(r.address.lower(), r.name),
                tags=dict(request.tags),
                created_at=now,
                scheduled_for=request.send_at,
                transitions=plan.transitions,
                extra_opens=plan.extra_opens,
                signals=plan_signals(self.signal_rng, self.outcomes, plan),
            )
            for r, plan in zip(request.recipients, plans, strict=True)
        ]
        operation = Operation(
            id=operation_id,
            created_at=now,
            scheduled_for=request.send_at,
            email_ids=tuple(e.id for e in emails),
            transitions=plan_operation(now, request.send_at, plans),
        )
        self.operations[operation_id] = operation
        bisect.insort(self._operation_keys, (now, operation_id))
        self._keys_by_operation[operation_id] = sorted((now, e.id) for e in emails)
        for transition in operation.transitions:
            self._schedule(transition.at, HappeningKind.OPERATION, operation_id)
        for email, plan in zip(emails, plans, strict=True):
            self._add(email)
            self._maybe_reply(email, plan)
        return operation

    def _add(self, email: Email) -> None:
        self.emails[email.id] = email
        bisect.insort(self._email_keys, (email.created_at, email.id))
        for transition in email.transitions:
            self._schedule(transition.at, HappeningKind.EMAIL, email.id)
        for at in email.extra_opens:
            self._schedule(at, HappeningKind.OPEN, email.id)
        signals = email.signals
        for at in signals.deferrals:
            self._schedule(at, HappeningKind.DEFERRED, email.id)
        if signals.spam_report is not None:
            self._schedule(signals.spam_report, HappeningKind.SPAM_REPORT, email.id)
        if signals.unsubscribe is not None:
            self._schedule(signals.unsubscribe, HappeningKind.UNSUBSCRIBE, email.id)

    def _maybe_reply(self, email: Email, plan: Plan) -> None:
        delivered = [t.at for t in plan.transitions if t.status is EmailStatus.DELIVERED]
        if not delivered or self.rng.random() >= self.outcomes.inbound:
            return
        arrives = plan_inbound(self.rng, self.outcomes, delivered[0])
        self._add(
            Email(
                id=self._new_id("comms_email_"),
                operation_id=None,
                sender=email.recipient,
                recipient=email.sender,
                tags={},
                created_at=arrives,
                scheduled_for=None,
                transitions=(Transition(EmailStatus.INBOUND, arrives),),
            )
        )

    def _schedule(self, at: datetime, kind: HappeningKind, item: str) -> None:
        heapq.heappush(self._happenings, Happening(at, next(self._seq), kind, item))
        self.settles_at = max(self.settles_at, at)

    # ------------------------------------------------------------------ reading

    def _alive(self, created_at: datetime, now: datetime) -> bool:
        return now - self.retention <= created_at <= now

    def email(self, email_id: str, now: datetime) -> Email | None:
        email = self.emails.get(email_id)
        return email if email is not None and self._alive(email.created_at, now) else None

    def operation(self, operation_id: str, now: datetime) -> Operation | None:
        operation = self.operations.get(operation_id)
        return operation if operation is not None and self._alive(operation.created_at, now) else None

    def operation_resource(self, operation: Operation, now: datetime) -> dict[str, Any]:
        return operation.resource(now, [self.emails[i] for i in operation.email_ids])

    def list_emails(self, query: ListQuery, now: datetime) -> tuple[list[dict[str, Any]], str | None]:
        """One page of Email resources (raises PageTokenError for a bad token)."""
        keys = self._email_keys
        if query.operation_id is not None:
            keys = self._keys_by_operation.get(query.operation_id, [])

        def matches(email_id: str) -> bool:
            email = self.emails[email_id]
            if query.status is not None:
                current = email.current(now)
                if current is None or current.status.value != query.status:
                    return False
            return all(email.tags.get(k) == v for k, v in query.tags.items())

        ids, token = select(keys, query, matches, now, self.retention, self.order)
        return [self.emails[i].resource(now) for i in ids], token

    def list_operations(self, query: ListQuery, now: datetime) -> tuple[list[dict[str, Any]], str | None]:
        def matches(operation_id: str) -> bool:
            if query.status is None:
                return True
            current = self.operations[operation_id].current(now)
            return current is not None and current.status.value == query.status

        ids, token = select(self._operation_keys, query, matches, now, self.retention, self.order)
        return [self.operation_resource(self.operations[i], now) for i in ids], token

    def due(self, now: datetime) -> list[Happening]:
        """Everything that happened up to ``now`` and was not reported yet, in time order."""
        out = []
        while self._happenings and self._happenings[0].at <= now:
            out.append(heapq.heappop(self._happenings))
        return out

    @property
    def pending(self) -> int:
        return len(self._happenings)

    def settled(self, now: datetime) -> bool:
        """True once every planned status and open has happened."""
        return now >= self.settles_at

    def truth(self, now: datetime, where: Callable[[Email], bool] = lambda e: True) -> list[EmailTruth]:
        """Every existing email's current status and since when, its opens and its statuses so far."""
        out = []
        for email in self.emails.values():
            current = email.current(now)
            if current is None or not where(email):
                continue
            out.append(
                EmailTruth(
                    id=email.id,
                    operation_id=email.operation_id,
                    status=current.status,
                    since=current.at,
                    created_at=email.created_at,
                    opens=email.opens(now),
                    transitions=tuple(t for t in email.transitions if t.at <= now),
                    **_signals_by(email, now),
                )
            )
        return out


def _signals_by(email: Email, now: datetime) -> dict[str, Any]:
    """The EmailTruth fields of ``email``'s signals that happened by ``now``."""
    s = email.signals
    bounced = any(t.status is EmailStatus.UNDELIVERED and t.at <= now for t in email.transitions)
    return {
        "deferrals": sum(1 for at in s.deferrals if at <= now),
        "blocked": bounced and s.blocked,
        "bounce_classification": s.bounce_classification if bounced else None,
        "spam_reported": s.spam_report is not None and s.spam_report <= now,
        "unsubscribed": s.unsubscribe is not None and s.unsubscribe <= now,
    }
