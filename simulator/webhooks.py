"""When which webhook copies leave: drops, duplicates, delays (out of order), bursts, retries. Pure.

For every target and every happening the planner builds the provider payload once, then:
``drop_rate`` of them never leave (the webhooks the poller must make up for); the rest leave once, and
``duplicate_rate`` of them one to three more times; each copy waits a random real-time delay up to
``max_delay_s`` (so they arrive out of order), and ``burst_share`` of the copies wait for the next
burst instant instead, so many POSTs leave together. Due copies are cut into POST bodies of 1 to
``burst`` events. A POST answered other than 2xx is retried with exponential backoff and jitter
(429 and 5xx and network errors, as Event Streams does; other 4xx are discarded), at most
``max_attempts`` times.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from simulator.core import Happening, HappeningKind, Simulator
from simulator.payloads import (
    Payload,
    WebhookFormat,
    email_cloud_event,
    operation_cloud_event,
    sendgrid_event,
    sendgrid_signal_event,
)

SIGNAL_KINDS = frozenset({HappeningKind.DEFERRED, HappeningKind.SPAM_REPORT, HappeningKind.UNSUBSCRIBE})


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    format: WebhookFormat = WebhookFormat.TWILIO


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    drop_rate: float = 0.0
    duplicate_rate: float = 0.1
    max_delay_s: float = 1.0
    burst_share: float = 0.3
    burst_interval_s: float = 0.5
    burst: int = 100  # most events in one POST
    max_attempts: int = 5
    retry_base_s: float = 0.2
    retry_max_s: float = 5.0
    timeout_s: float = 5.0  # Event Streams gives a receiver 5 s

    def __post_init__(self) -> None:
        for name in ("drop_rate", "duplicate_rate", "burst_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.burst < 1 or self.max_attempts < 1:
            raise ValueError("burst and max_attempts must be at least 1")

    def retry_delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds before retry number ``attempt`` (1-based): full jitter on an exponential cap."""
        return rng.uniform(0, min(self.retry_max_s, self.retry_base_s * 2**attempt))

    def retriable(self, status: int) -> bool:
        return status == 429 or status >= 500


@dataclass(frozen=True, slots=True)
class Subject:
    """What one webhook event reports about an email (for the accounting of what webhooks alone show)."""

    email_id: str
    status: str


@dataclass(frozen=True, slots=True, order=True)
class Delivery:
    due: float
    seq: int
    target: int = field(compare=False)
    event: Payload = field(compare=False)
    subject: Subject | None = field(compare=False)


@dataclass(frozen=True, slots=True)
class Batch:
    target: int
    events: list[Payload]
    subjects: list[Subject | None]


@dataclass(slots=True)
class PlanStats:
    happenings: int = 0
    events: int = 0  # distinct webhook events built
    dropped: int = 0  # events that never leave
    copies: int = 0  # deliveries planned, duplicates included


class WebhookPlanner:
    def __init__(self, targets: Sequence[WebhookTarget], policy: WebhookPolicy, rng: random.Random) -> None:
        self.targets = tuple(targets)
        self.policy = policy
        self.rng = rng
        self.stats = PlanStats()
        self._queue: list[Delivery] = []
        self._seq = itertools.count()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def add(self, happening: Happening, simulator: Simulator, now: float) -> None:
        """Plan the deliveries of one happening (``now``: real seconds, the clock ``take`` uses)."""
        self.stats.happenings += 1
        for index, target in enumerate(self.targets):
            built = self._build(target.format, happening, simulator)
            if built is None:
                continue
            event, subject = built
            self.stats.events += 1
            if self.rng.random() < self.policy.drop_rate:
                self.stats.dropped += 1
                continue
            copies = 1
            if self.rng.random() < self.policy.duplicate_rate:
                copies += self.rng.choice((1, 1, 1, 2, 3))
            for _ in range(copies):
                heapq.heappush(self._queue, Delivery(self._due(now), next(self._seq), index, event, subject))
            self.stats.copies += copies

    def _due(self, now: float) -> float:
        delay = self.rng.uniform(0, self.policy.max_delay_s)
        if self.rng.random() < self.policy.burst_share:
            step = self.policy.burst_interval_s
            return math.ceil((now + delay) / step) * step
        return now + delay

    def _build(
        self, target_format: WebhookFormat, happening: Happening, simulator: Simulator
    ) -> tuple[Payload, Subject | None] | None:
        at = happening.at
        if happening.kind is HappeningKind.OPERATION:
            if target_format is not WebhookFormat.TWILIO:
                return None
            operation = simulator.operations[happening.id]
            event = operation_cloud_event(self.rng, operation, simulator.operation_resource(operation, at))
            return None if event is None else (event, None)
        email = simulator.emails[happening.id]
        if happening.kind in SIGNAL_KINDS:  # no Email API event exists for these
            if target_format is not WebhookFormat.SENDGRID:
                return None
            signal = sendgrid_signal_event(self.rng, email, happening.kind.value, at)
            return None if signal is None else (signal, None)
        current = email.current(at)
        assert current is not None
        subject = Subject(email.id, current.status.value)
        if target_format is WebhookFormat.SENDGRID:
            payload = sendgrid_event(self.rng, email, at)
            return None if payload is None else (payload, subject)
        return email_cloud_event(self.rng, email, at), subject

    def take(self, now: float) -> list[Batch]:
        """The POST bodies due at ``now`` (real seconds), each 1 to ``burst`` events of one target."""
        due: dict[int, list[Delivery]] = {}
        while self._queue and self._queue[0].due <= now:
            delivery = heapq.heappop(self._queue)
            due.setdefault(delivery.target, []).append(delivery)
        batches = []
        for target, deliveries in due.items():
            start = 0
            while start < len(deliveries):
                size = self.rng.randint(1, self.policy.burst)
                chunk = deliveries[start : start + size]
                batches.append(Batch(target, [d.event for d in chunk], [d.subject for d in chunk]))
                start += size
        return batches
