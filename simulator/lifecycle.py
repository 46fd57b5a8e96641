"""Outcome rates and timings of simulated emails, and the plan of one email's statuses. Pure.

Paths (times are API time after the previous status):

- scheduled: SCHEDULED -> CANCELED (``canceled`` of them, before sendAt) or -> QUEUED at sendAt;
- QUEUED -> FAILED (``failed``) or -> SENT;
- SENT -> UNDELIVERED (``undelivered``) or -> DELIVERED; ``slow`` of them stay SENT for a long time
  first (deferrals, greylisting: the messages the poller's reconciliation exists for);
- DELIVERED -> UNDELIVERED later (``async_bounce``) or -> OPENED (``opened``), then more opens;
- INBOUND: a reply from a recipient (``inbound`` per outbound email), a single status.

Deliverability signals (``plan_signals``, drawn from a random stream of their own so that the statuses
above are the same with or without them): the ``slow`` emails are deferred one to three times while
SENT (SendGrid ``deferred`` events, attempt 1, 2, ...); ``blocked`` of the UNDELIVERED emails are
blocks (SendGrid bounce type ``blocked``), and every bounce has a SendGrid ``bounce_classification``;
``spam_report`` and ``unsubscribe`` of the emails that stay delivered are reported as spam or
unsubscribed after delivery. The Email API's own events carry none of these; SendGrid-format webhooks
carry them all.

Every path climbs mailpulse's status precedence (schemas.status), so "current status = highest status
seen" holds for the simulator as it does downstream.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.status import EmailStatus, OperationStatus
from simulator.clock import truncate_ms
from simulator.model import OperationTransition, Signals, Transition

_S = EmailStatus
Span = tuple[float, float]  # seconds of API time, drawn uniformly


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Probabilities and timings. Defaults follow common transactional-mail numbers."""

    failed: float = 0.03
    undelivered: float = 0.06
    slow: float = 0.04
    async_bounce: float = 0.02
    opened: float = 0.30
    canceled: float = 0.10  # of scheduled emails
    inbound: float = 0.01  # replies per outbound email
    blocked: float = 0.3  # of UNDELIVERED emails: blocks (a refusal of the sender, not of the address)
    spam_report: float = 0.002  # of emails that stay delivered: reported as spam
    unsubscribe: float = 0.005  # of emails that stay delivered: unsubscribed
    extra_opens: tuple[float, ...] = (0.45, 0.30, 0.15, 0.10)  # P(0, 1, 2, 3 more opens)
    queue_s: Span = (0.2, 3.0)
    send_s: Span = (1.0, 30.0)
    slow_send_s: Span = (600.0, 3600.0)
    bounce_after_s: Span = (60.0, 1800.0)
    open_after_s: Span = (60.0, 7200.0)
    reopen_after_s: Span = (30.0, 3600.0)
    inbound_after_s: Span = (60.0, 3600.0)
    complaint_after_s: Span = (30.0, 3600.0)  # spam reports and unsubscribes, after delivery

    @property
    def longest_s(self) -> float:
        """Longest time from QUEUED to the last event of an email (bounds how long a run lasts)."""
        tail = max(
            self.bounce_after_s[1],
            self.open_after_s[1] + 3 * self.reopen_after_s[1],
            self.complaint_after_s[1],
        )
        return self.queue_s[1] + max(self.send_s[1], self.slow_send_s[1]) + tail


def _after(rng: random.Random, at: datetime, span: Span) -> datetime:
    """A time ``span`` after ``at``, at least 1 ms later (times of one email strictly increase)."""
    later = truncate_ms(at + timedelta(seconds=rng.uniform(*span)))
    return max(later, at + timedelta(milliseconds=1))


@dataclass(frozen=True, slots=True)
class Plan:
    transitions: tuple[Transition, ...]
    extra_opens: tuple[datetime, ...] = ()


def plan_email(
    rng: random.Random, outcomes: Outcomes, created_at: datetime, send_at: datetime | None
) -> Plan:
    """Every status the email will have and when, drawn once at creation."""
    steps: list[Transition] = []
    start = created_at
    if send_at is not None:
        steps.append(Transition(_S.SCHEDULED, created_at))
        if rng.random() < outcomes.canceled:
            seconds = max((send_at - created_at).total_seconds(), 0.002)
            steps.append(Transition(_S.CANCELED, _after(rng, created_at, (0.001, seconds))))
            return Plan(tuple(steps))
        start = max(send_at, created_at + timedelta(milliseconds=1))
    steps.append(Transition(_S.QUEUED, start))
    handed = _after(rng, start, outcomes.queue_s)
    if rng.random() < outcomes.failed:
        return Plan((*steps, Transition(_S.FAILED, handed)))
    steps.append(Transition(_S.SENT, handed))
    span = outcomes.slow_send_s if rng.random() < outcomes.slow else outcomes.send_s
    answered = _after(rng, handed, span)
    if rng.random() < outcomes.undelivered:
        return Plan((*steps, Transition(_S.UNDELIVERED, answered)))
    steps.append(Transition(_S.DELIVERED, answered))
    draw = rng.random()
    if draw < outcomes.async_bounce:
        steps.append(Transition(_S.UNDELIVERED, _after(rng, answered, outcomes.bounce_after_s)))
    elif draw < outcomes.async_bounce + outcomes.opened:
        opened = _after(rng, answered, outcomes.open_after_s)
        steps.append(Transition(_S.OPENED, opened))
        more = rng.choices(range(len(outcomes.extra_opens)), weights=outcomes.extra_opens)[0]
        opens = [opened]
        for _ in range(more):
            opens.append(_after(rng, opens[-1], outcomes.reopen_after_s))
        return Plan(tuple(steps), tuple(opens[1:]))
    return Plan(tuple(steps))


# SendGrid's bounce classifications: those of refused addresses, and those of blocks.
BOUNCE_CLASSIFICATIONS = ("Invalid Address", "Mailbox Unavailable", "Technical Failure", "Unclassified")
BLOCK_CLASSIFICATIONS = ("Reputation", "Content", "Frequency or Volume Too High")


def plan_signals(rng: random.Random, outcomes: Outcomes, plan: Plan) -> Signals:
    """The signals of an email whose statuses are ``plan``."""
    statuses = [t.status for t in plan.transitions]
    deferrals: list[datetime] = []
    if _S.SENT in statuses and statuses[-1] is not _S.SENT:
        sent, answered = (t.at for t in plan.transitions[statuses.index(_S.SENT) :][:2])
        if (answered - sent).total_seconds() > outcomes.send_s[1]:  # a slow one: deferred meanwhile
            gap = (answered - sent) / 4
            deferrals = [truncate_ms(sent + gap * (n + rng.random())) for n in range(rng.randint(1, 3))]
    blocked, classification = False, None
    if _S.UNDELIVERED in statuses:
        blocked = _S.DELIVERED not in statuses and rng.random() < outcomes.blocked
        classification = rng.choice(BLOCK_CLASSIFICATIONS if blocked else BOUNCE_CLASSIFICATIONS)
    spam = unsubscribe = None
    if statuses[-1] in (_S.DELIVERED, _S.OPENED):
        delivered = plan.transitions[statuses.index(_S.DELIVERED)].at
        if rng.random() < outcomes.spam_report:
            spam = _after(rng, delivered, outcomes.complaint_after_s)
        if rng.random() < outcomes.unsubscribe:
            unsubscribe = _after(rng, delivered, outcomes.complaint_after_s)
    return Signals(tuple(deferrals), blocked, classification, spam, unsubscribe)


def plan_inbound(rng: random.Random, outcomes: Outcomes, sent_at: datetime) -> datetime:
    """When a reply to an email sent at ``sent_at`` arrives."""
    return _after(rng, sent_at, outcomes.inbound_after_s)


def plan_operation(
    created_at: datetime, scheduled_for: datetime | None, plans: list[Plan]
) -> tuple[OperationTransition, ...]:
    """SCHEDULED (with sendAt) -> PROCESSING -> COMPLETED once every email left QUEUED; CANCELED when
    every email was canceled before sendAt."""
    first = OperationStatus.SCHEDULED if scheduled_for else OperationStatus.PROCESSING
    steps = [OperationTransition(first, created_at)]
    live = [p for p in plans if p.transitions[-1].status is not _S.CANCELED]
    if not live:
        canceled_at = max(p.transitions[-1].at for p in plans)
        return (*steps, OperationTransition(OperationStatus.CANCELED, canceled_at))
    if scheduled_for is not None:
        steps.append(OperationTransition(OperationStatus.PROCESSING, live[0].transitions[1].at))
    # An email is processed once it left QUEUED (SENT or FAILED): the transition after QUEUED.
    done = max(_after_queued(p) for p in live)
    done = max(done, steps[-1].at + timedelta(milliseconds=1))
    return (*steps, OperationTransition(OperationStatus.COMPLETED, done))


def _after_queued(plan: Plan) -> datetime:
    statuses = [t.status for t in plan.transitions]
    return plan.transitions[statuses.index(_S.QUEUED) + 1].at
