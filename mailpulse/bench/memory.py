"""Measurement 7: memory of the processor's state cache holding N messages, as the RSS growth of a
fresh process (cache structure and allocator overhead included), per tracked message. RSS rather than
tracemalloc: tracemalloc slows filling a million states several times over.

Run as its own process: ``python -m mailpulse.bench.memory MESSAGES OUT``.
"""

from __future__ import annotations

import gc
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from mailpulse.bench.layout import SERVER_CORE, pin
from processors.cache import StateCache
from processors.state import MessageState
from schemas.event import CanonicalEvent, Provider, Source, domain_of
from schemas.status import EmailStatus, EventKind

BASE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
_HAPPY = (EmailStatus.QUEUED, EmailStatus.SENT, EmailStatus.DELIVERED, EmailStatus.OPENED)
_BOUNCE = (EmailStatus.QUEUED, EmailStatus.SENT, EmailStatus.UNDELIVERED)


@dataclass(frozen=True, slots=True)
class MemoryFigures:
    messages: int
    retained_bytes: int
    peak_bytes: int

    @property
    def per_message(self) -> float:
        return self.retained_bytes / max(1, self.messages)


def events_of(n: int) -> list[CanonicalEvent]:
    """A Twilio message's events (every tenth bounces). Its strings are its own, as decoding makes them;
    its events share them (copies of the first), which only matters for what the state keeps."""
    statuses = _BOUNCE if n % 10 == 0 else _HAPPY
    recipient = f"person.{n}@mail{n % 997}.example.org"
    at = BASE + timedelta(seconds=n % 86_400)
    first = CanonicalEvent.model_construct(
        event_id=f"EZ{n:030d}", message_id=f"comms_email_{n:026d}", provider_message_id=None,
        operation_id=f"comms_operation_{n // 100:022d}", kind=EventKind.STATUS, status=statuses[0],
        raw_type="com.twilio.comms-api.email.queued", occurred_at=at, received_at=at,
        source=Source.WEBHOOK, provider=Provider.TWILIO, recipient=recipient,
        recipient_domain=domain_of(recipient), sender="billing@shop.example.com",
        sender_domain="shop.example.com", tags={"campaign": "invoice-2026-11", "tenant": f"t{n % 50}"},
        custom_args={}, categories=(), reason=None, smtp_status=None, bounce_type=None,
        bounce_classification=None, attempt=None, machine_open=None, url=None, inbound=None,
    )  # fmt: skip
    out = [first]
    for step, status in enumerate(statuses[1:], start=1):
        failed = status is EmailStatus.UNDELIVERED
        update: dict[str, object] = {
            "event_id": f"EZ{n:030d}{step}", "status": status,
            "raw_type": f"com.twilio.comms-api.email.{status.lower()}",
            "occurred_at": at + timedelta(milliseconds=250 * step),
            "reason": "550 5.1.1 user unknown" if failed else None,
            "bounce_type": "bounce" if failed else None,
            "machine_open": False if status is EmailStatus.OPENED else None,
        }  # fmt: skip
        out.append(first.model_copy(update=update))
    return out


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    """This process's RSS high-water mark. Not ru_maxrss: after fork and exec it still reports the
    parent's RSS at the fork (the bench runner's, hundreds of MB), which inflated the peak figure."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(messages: int, partitions: int = 6) -> MemoryFigures:
    """Fill a StateCache with ``messages`` merged states; RSS growth (now and at its peak)."""
    events_of(0)  # imports and first-use caches out of the figure
    gc.collect()
    before = _rss()
    cache = StateCache(messages)
    for n in range(messages):
        events = events_of(n)
        state = MessageState(events[0].message_id)
        for e in events:
            state.apply(e)
        cache.put(n % partitions, state)
    del events, state, e
    gc.collect()
    peak = _peak_rss()
    if len(cache) != messages:
        raise RuntimeError(f"cache holds {len(cache)} states, expected {messages}")
    return MemoryFigures(messages, _rss() - before, peak - before)


def main(argv: list[str]) -> int:
    pin(SERVER_CORE)
    figures = measure(int(argv[0]))
    Path(argv[1]).write_bytes(
        orjson.dumps(
            {
                "messages": figures.messages,
                "retained_bytes": figures.retained_bytes,
                "peak_bytes": figures.peak_bytes,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
