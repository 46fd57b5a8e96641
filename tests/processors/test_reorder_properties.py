"""Bounded-lateness reordering of one partition (DESIGN.md "Ordered transitions", "Delivery guarantees").

PartitionReorder is driven with generated event sequences for one partition (offsets 0..n-1 in push
order), an injected clock reading ``now`` and a lateness L. Expected values come from the rules written
out here (canonical order = event time, then the designed status precedence, then dedupe key; the
watermark = highest clamped event time seen minus L, EPOCH at first; a flush jumps it to the newest
waiting event's clamped time), never from the code under test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from processors.batch import Consumed
from processors.reorder import (
    EPOCH,
    MAX_FUTURE_SKEW,
    CommitPoint,
    PartitionReorder,
    decode_watermark,
    encode_watermark,
    watermark_time,
)
from schemas.event import CanonicalEvent, Provider, Source
from schemas.status import EmailStatus, EventKind
from tests.processors.expected import FAILURES, RANK

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ES = EmailStatus
PARTITION = 4
BASE = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)

# The designed precedence, lowest first (DESIGN.md "Statuses and precedence"); events without a status
# (clicks, deferrals, ...) sort before every status at the same instant.
MESSAGE_IDS = [
    "comms_email_01jbq8x2m4f6e9h3k5n7p9r1s3",
    "comms_email_01jbq8y7t5v3w1x9z7b5d3f1h9",
    "Lg3kSvpTS1qvc3V2hSzUMQ:jane.doe@example.com",
]
OTHER_KINDS = [EventKind.CLICK, EventKind.DEFERRED, EventKind.UNKNOWN]


def key(event: CanonicalEvent) -> tuple[datetime, int, str]:
    """Canonical order, written from the spec: event time, then precedence, then dedupe key."""
    rank = RANK[event.status] if event.status is not None else -1
    return (event.occurred_at, rank, event.dedupe_key)


def clamped(event: CanonicalEvent) -> datetime:
    """The event time the watermark may use: a sender's clock error is capped at ingest + skew."""
    return min(event.occurred_at, event.received_at + MAX_FUTURE_SKEW)


# --------------------------------------------------------------------------- strategies


def make_event(
    n: int,
    what: EmailStatus | EventKind,
    occurred: datetime,
    received: datetime,
    *,
    message_id: str = MESSAGE_IDS[0],
    machine_open: bool | None = None,
    reason: str | None = None,
) -> CanonicalEvent:
    status = what if isinstance(what, EmailStatus) else None
    kind = EventKind.STATUS if status is not None else what
    assert isinstance(kind, EventKind)
    if status in FAILURES and reason is None:
        reason = "550 5.1.1 no such user"
    return CanonicalEvent(
        event_id=f"ev-{n:04d}",
        message_id=message_id,
        kind=kind,
        status=status,
        raw_type=str(what),
        occurred_at=occurred,
        received_at=received,
        source=Source.WEBHOOK,
        provider=Provider.TWILIO,
        recipient="ann@example.org",
        recipient_domain="example.org",
        machine_open=machine_open if status is ES.OPENED else None,
        reason=reason,
        url="https://a.example/x" if kind is EventKind.CLICK else None,
        attempt=1 if kind is EventKind.DEFERRED else None,
    )


# Receive delays: normally 0..90 s after the event; "skewed" also allows a sender clock ahead of ours,
# slightly (within MAX_FUTURE_SKEW) or wildly (hours, days).
NORMAL_DELAY_MS = st.integers(0, 90_000)
SKEWED_DELAY_MS = st.one_of(
    NORMAL_DELAY_MS,
    st.integers(-MAX_FUTURE_SKEW // MS, 0),
    st.integers(-3 * 86_400_000, -(MAX_FUTURE_SKEW // MS) - 1),
)


@st.composite
def event_lists(draw: st.DrawFn, *, skewed: bool = False, max_size: int = 25) -> list[CanonicalEvent]:
    """Events of a few messages over ~6 s in 250 ms steps (ties are common), some exact re-deliveries."""
    size = draw(st.integers(0, max_size))
    events: list[CanonicalEvent] = []
    for n in range(size):
        if events and draw(st.integers(0, 7)) == 0:
            # A re-delivery of an earlier event: same dedupe key, new id, later ingest.
            original = draw(st.sampled_from(events))
            events.append(
                original.model_copy(
                    update={"event_id": f"ev-{n:04d}", "received_at": original.received_at + 3 * MS}
                )
            )
            continue
        occurred = BASE + draw(st.integers(0, 24)) * 250 * MS
        delay = draw(SKEWED_DELAY_MS if skewed else NORMAL_DELAY_MS)
        what = draw(st.sampled_from([*EmailStatus, *OTHER_KINDS]))
        events.append(
            make_event(
                n,
                what,
                occurred,
                occurred + delay * MS,
                message_id=draw(st.sampled_from(MESSAGE_IDS)),
                machine_open=draw(st.booleans()),
                reason=draw(st.sampled_from(["550 5.1.1 no such user", "552 5.2.2 mailbox full"])),
            )
        )
    return events


LATENESS = st.one_of(st.sampled_from([0, 1, 250, 500, 1000, 2000]), st.integers(0, 3000)).map(
    lambda ms: ms * MS
)
POSITIVE_LATENESS = st.one_of(st.sampled_from([1, 250, 500, 1000, 2000]), st.integers(1, 3000)).map(
    lambda ms: ms * MS
)


@st.composite
def bounded_arrivals(draw: st.DrawFn) -> tuple[timedelta, list[CanonicalEvent]]:
    """A canonically sorted list displaced by less than L in event time: no event arrives after one
    whose event time exceeds its own by L or more. Built by picking, at each step, any remaining event
    earlier than (earliest remaining + L); this yields exactly the permutations with that bound."""
    lateness = draw(POSITIVE_LATENESS)
    remaining = sorted(draw(event_lists()), key=key)
    arrival: list[CanonicalEvent] = []
    while remaining:
        earliest = remaining[0].occurred_at
        candidates = [i for i, e in enumerate(remaining) if e.occurred_at < earliest + lateness]
        arrival.append(remaining.pop(draw(st.sampled_from(candidates))))
    return lateness, arrival


def consumed(events: Sequence[CanonicalEvent]) -> list[Consumed]:
    return [Consumed(PARTITION, offset, event) for offset, event in enumerate(events)]


def positions(items: Sequence[Consumed]) -> list[tuple[int, bool]]:
    return [(c.offset, c.late) for c in items]


def canonical(items: Sequence[Consumed]) -> list[Consumed]:
    return sorted(items, key=lambda c: (key(c.event), c.offset))


@dataclass
class Watermark:
    """The watermark computed independently: max over pushed events of clamped time - L (EPOCH first);
    a flush jumps it to the newest clamped time among the events it emits."""

    lateness: timedelta
    value: datetime = EPOCH

    def pushed(self, event: CanonicalEvent) -> None:
        self.value = max(self.value, clamped(event) - self.lateness)

    def flushed(self, events: Sequence[CanonicalEvent]) -> None:
        if events:
            self.value = max(self.value, max(clamped(e) for e in events))


@dataclass
class Tally:
    """Every emission, by offset, with the push/flush call number that emitted it."""

    emitted: Counter[int] = field(default_factory=Counter)
    call_of: dict[int, int] = field(default_factory=dict)
    late: dict[int, bool] = field(default_factory=dict)

    def add(self, call: int, items: Sequence[Consumed]) -> None:
        for c in items:
            assert c.partition == PARTITION
            self.emitted[c.offset] += 1
            self.call_of.setdefault(c.offset, call)
            self.late[c.offset] = c.late


# --------------------------------------------------------------------------- 1. exactly once


@PROPS
@given(
    event_lists(skewed=True),
    LATENESS,
    st.floats(0, 5),
    st.lists(st.tuples(st.integers(0, 3000), st.booleans()), min_size=25, max_size=25),
)
def test_every_pushed_event_is_emitted_exactly_once(
    events: list[CanonicalEvent],
    lateness: timedelta,
    max_wait_s: float,
    clock: list[tuple[int, bool]],
) -> None:
    reorder = PartitionReorder(lateness, max_wait_s)
    tally = Tally()
    now = 1000.0
    for item, (step_ms, consumer_checks) in zip(consumed(events), clock, strict=False):
        now += step_ms / 1000
        tally.add(item.offset, reorder.push(item, now))
        if consumer_checks and reorder.overdue(now):
            tally.add(item.offset, reorder.flush())
    tally.add(len(events), reorder.flush())
    assert tally.emitted == Counter(range(len(events)))
    assert len(reorder) == 0
    assert reorder.flush() == []


# --------------------------------------------------------------------------- 2. canonical order


@PROPS
@given(bounded_arrivals())
def test_displacement_within_lateness_comes_out_in_canonical_order(
    case: tuple[timedelta, list[CanonicalEvent]],
) -> None:
    lateness, events = case
    # The generator's promise, checked: nothing arrives after an event L or more later than itself.
    for j, later in enumerate(events):
        assert all(earlier.occurred_at - later.occurred_at < lateness for earlier in events[:j])
    items = consumed(events)
    reorder = PartitionReorder(lateness, max_wait_s=60.0)
    out: list[Consumed] = []
    for item in items:
        out += reorder.push(item, now=500.0)  # the clock stands still: nothing is overdue
    out += reorder.flush()
    assert positions(out) == positions(canonical(items))
    assert not any(c.late for c in out)


def test_an_event_exactly_lateness_behind_is_late() -> None:
    """Module contract: "an event at or behind the watermark on arrival is ... flagged late"; so a
    displacement of exactly L is already late (property 2 uses displacements strictly below L)."""
    lateness = timedelta(seconds=2)
    first = make_event(0, ES.DELIVERED, BASE + 2 * lateness, BASE + 2 * lateness)
    at_edge = make_event(1, ES.SENT, BASE + lateness, BASE + lateness + MS)
    inside = make_event(2, ES.QUEUED, BASE + lateness + MS, BASE + lateness + MS)
    reorder = PartitionReorder(lateness, 60.0)
    assert reorder.push(Consumed(PARTITION, 0, first), 0.0) == []
    assert positions(reorder.push(Consumed(PARTITION, 1, at_edge), 0.0)) == [(1, True)]
    assert reorder.push(Consumed(PARTITION, 2, inside), 0.0) == []
    assert positions(reorder.flush()) == [(2, False), (0, False)]


# --------------------------------------------------------------------------- 3./4. late flags, per push


@PROPS
@given(event_lists(skewed=True), LATENESS)
def test_late_iff_at_or_behind_the_watermark_and_emitted_at_once(
    events: list[CanonicalEvent], lateness: timedelta
) -> None:
    reorder = PartitionReorder(lateness, max_wait_s=60.0)
    watermark = Watermark(lateness)
    flagged: dict[int, bool] = {}
    for item in consumed(events):
        expect_late = item.event.occurred_at <= watermark.value
        out = reorder.push(item, now=0.0)
        watermark.pushed(item.event)
        assert reorder.watermark == watermark.value
        if expect_late:
            assert positions(out) == [(item.offset, True)]  # at once, alone, flagged
        for c in out:
            flagged[c.offset] = c.late
    for c in reorder.flush():
        flagged[c.offset] = c.late
    # Every event is flagged exactly when the spec's watermark at its arrival had reached it.
    assert flagged == {o: e.occurred_at <= wm for o, e, wm in _watermarks_before(events, lateness)}


def _watermarks_before(
    events: Sequence[CanonicalEvent], lateness: timedelta
) -> list[tuple[int, CanonicalEvent, datetime]]:
    """(offset, event, watermark at its arrival) with the watermark written as in the spec: the max
    over earlier pushed events of min(occurred_at, received_at + MAX_FUTURE_SKEW) - L, EPOCH at first."""
    return [(o, e, max([EPOCH, *(clamped(p) - lateness for p in events[:o])])) for o, e in enumerate(events)]


@PROPS
@given(event_lists(skewed=True), LATENESS)
def test_each_push_releases_in_canonical_order_up_to_the_watermark(
    events: list[CanonicalEvent], lateness: timedelta
) -> None:
    reorder = PartitionReorder(lateness, max_wait_s=60.0)
    watermark = Watermark(lateness)
    waiting: dict[int, Consumed] = {}
    in_time: list[Consumed] = []  # every non-late emission, in emission order
    for item in consumed(events):
        was_late = item.event.occurred_at <= watermark.value
        out = reorder.push(item, now=0.0)
        watermark.pushed(item.event)
        if not was_late:
            waiting[item.offset] = item
        fresh = [c for c in out if not c.late]
        assert positions(fresh) == positions(canonical(fresh))
        assert all(c.event.occurred_at <= watermark.value for c in fresh)
        # Exactly the waiting events the watermark has passed leave, and nothing else.
        due = [c for c in waiting.values() if c.event.occurred_at <= watermark.value]
        assert positions(fresh) == positions(canonical(due))
        for c in fresh:
            del waiting[c.offset]
        assert len(reorder) == len(waiting)
        in_time += fresh
    # Without flushes, the non-late emissions are canonical across push calls too.
    assert positions(in_time) == positions(canonical(in_time))
    rest = reorder.flush()
    assert positions(rest) == positions(canonical(list(waiting.values())))


# --------------------------------------------------------------------------- 5. commit point


@st.composite
def partition_logs(draw: st.DrawFn) -> list[CanonicalEvent | str]:
    """A partition's records and the consumer's actions: events, "dead" (undecodable record: its
    offset is skipped) and "flush" (an overdue flush; takes no offset)."""
    events = draw(event_lists(skewed=True))
    log: list[CanonicalEvent | str] = []
    for event in events:
        log += draw(st.lists(st.sampled_from(["dead", "flush"]), max_size=2))
        log.append(event)
    log += draw(st.lists(st.sampled_from(["dead", "flush"]), max_size=2))
    return log


@PROPS
@given(partition_logs(), LATENESS)
def test_commit_point_never_passes_a_waiting_event(
    log: list[CanonicalEvent | str], lateness: timedelta
) -> None:
    reorder = PartitionReorder(lateness, max_wait_s=60.0)
    watermark = Watermark(lateness)
    waiting: dict[int, datetime] = {}  # offset -> watermark before it arrived
    pending: dict[int, CanonicalEvent] = {}
    assert reorder.commit_point() is None
    offset = 0
    last: int | None = None
    for step in log:
        if step == "flush":
            out = reorder.flush()
            watermark.flushed([c.event for c in out])
            assert {c.offset for c in out} == set(waiting)
        elif step == "dead":
            reorder.skip(offset)
            out = []
            last, offset = offset, offset + 1
        else:
            assert isinstance(step, CanonicalEvent)
            before = watermark.value
            out = reorder.push(Consumed(PARTITION, offset, step), now=0.0)
            watermark.pushed(step)
            waiting[offset], pending[offset] = before, step
            last, offset = offset, offset + 1
        for c in out:
            del waiting[c.offset]
        point = reorder.commit_point()
        if last is None:
            assert point is None
        elif waiting:
            oldest = min(waiting)
            assert point == CommitPoint(oldest, waiting[oldest])
        else:
            assert point == CommitPoint(last + 1, watermark.value)


def test_dead_letter_moves_the_commit_point_only_when_nothing_waits() -> None:
    lateness = timedelta(seconds=1)
    reorder = PartitionReorder(lateness, 60.0)
    assert reorder.commit_point() is None
    reorder.skip(0)
    assert reorder.commit_point() == CommitPoint(1, EPOCH)
    first = make_event(1, ES.SENT, BASE, BASE)
    assert reorder.push(Consumed(PARTITION, 1, first), 0.0) == []  # waits for L
    reorder.skip(2)
    assert reorder.commit_point() == CommitPoint(1, EPOCH)  # still before the waiting event
    second = make_event(3, ES.DELIVERED, BASE + 2 * lateness, BASE + 2 * lateness)
    assert positions(reorder.push(Consumed(PARTITION, 3, second), 0.0)) == [(1, False)]
    assert reorder.commit_point() == CommitPoint(3, BASE - lateness)
    reorder.flush()
    reorder.skip(4)
    assert reorder.commit_point() == CommitPoint(5, BASE + 2 * lateness)


# --------------------------------------------------------------------------- 6. replay determinism


@PROPS
@given(st.data(), partition_logs(), LATENESS)
def test_replay_from_the_commit_point_reproduces_emissions_and_flags(
    data: st.DataObject, log: list[CanonicalEvent | str], lateness: timedelta
) -> None:
    cut = data.draw(st.integers(0, len(log)), label="cut")
    # Overdue flushes may happen before the crash; after it, both runs see the same (no) flush timing.
    log = [s for i, s in enumerate(log) if i < cut or s != "flush"]
    first = PartitionReorder(lateness, 60.0)
    before_cut: list[Consumed] = []
    per_push: dict[int, list[tuple[int, bool]]] = {}  # pushed offset -> emissions of that call
    marks: dict[int, datetime] = {}
    point: CommitPoint | None = None
    offset = 0
    for i, step in enumerate(log):
        if i == cut:
            point = first.commit_point()
        if step == "flush":
            before_cut += first.flush()
            continue
        if step == "dead":
            first.skip(offset)
        else:
            assert isinstance(step, CanonicalEvent)
            out = first.push(Consumed(PARTITION, offset, step), now=0.0)
            per_push[offset] = positions(out)
            marks[offset] = first.watermark
            if i < cut:
                before_cut += out
        offset += 1
    if cut == len(log):
        point = first.commit_point()
    final = positions(first.flush())
    start, resumed = (0, EPOCH) if point is None else (point.offset, point.watermark)
    # Everything below the commit point was emitted before the crash.
    assert all(o in {c.offset for c in before_cut} for o in per_push if o < start)

    replay = PartitionReorder(lateness, 60.0, watermark=decode_watermark(encode_watermark(resumed)))
    replayed: list[Consumed] = []
    offset = 0
    for step in log:
        if step == "flush":
            continue
        if offset >= start:
            if step == "dead":
                replay.skip(offset)
            else:
                assert isinstance(step, CanonicalEvent)
                out = replay.push(Consumed(PARTITION, offset, step), now=0.0)
                # Same emissions, same late flags, same watermark as the first run's call.
                assert positions(out) == [p for p in per_push[offset] if p[0] >= start]
                assert replay.watermark == marks[offset]
                replayed += out
        offset += 1
    rest = replay.flush()
    assert positions(rest) == [p for p in final if p[0] >= start]
    replayed += rest
    covered = Counter([c.offset for c in before_cut if c.offset < start] + [c.offset for c in replayed])
    assert covered == Counter(list(per_push))


# --------------------------------------------------------------------------- 7. overdue flush


# Clock readings in 1/1024 s steps: binary fractions add and subtract exactly, so "now >= t + M" and
# "now - t >= M" agree and the test checks the reorder buffer, not float rounding.
TICK = 1 / 1024


@st.composite
def timed_logs(draw: st.DrawFn) -> list[tuple[CanonicalEvent | None, float]]:
    """Pushes (event) and idle polls (None), each after a clock step in seconds."""
    events = draw(event_lists(skewed=True))
    steps: list[tuple[CanonicalEvent | None, float]] = []
    for event in events:
        for _ in range(draw(st.integers(0, 2))):
            steps.append((None, draw(st.integers(0, 4096)) * TICK))
        steps.append((event, draw(st.integers(0, 4096)) * TICK))
    return steps


@PROPS
@given(timed_logs(), LATENESS, st.integers(0, 5120).map(lambda ticks: ticks * TICK))
def test_no_event_waits_past_max_wait(
    steps: list[tuple[CanonicalEvent | None, float]], lateness: timedelta, max_wait_s: float
) -> None:
    reorder = PartitionReorder(lateness, max_wait_s)
    watermark = Watermark(lateness)
    arrived: dict[int, float] = {}  # waiting offset -> clock reading at push
    pushed_at: dict[int, float] = {}
    emitted_at: dict[int, float] = {}
    checks: list[float] = []  # clock readings of the consumer's overdue checks
    now = 100.0
    offset = 0
    for event, step in steps:
        now += step
        if event is not None:
            expect_late = event.occurred_at <= watermark.value
            out = reorder.push(Consumed(PARTITION, offset, event), now)
            watermark.pushed(event)
            pushed_at[offset] = now
            if expect_late:
                assert positions(out) == [(offset, True)]
            else:
                arrived[offset] = now
                assert all(not c.late for c in out)
            for c in out:
                emitted_at[c.offset] = now
                arrived.pop(c.offset, None)
            offset += 1
        # The consumer: after each poll, flush when overdue.
        checks.append(now)
        expect_overdue = any(now - t >= max_wait_s for t in arrived.values())
        assert reorder.overdue(now) is expect_overdue
        if expect_overdue:
            out = reorder.flush()
            assert {c.offset for c in out} == set(arrived)
            assert positions(out) == positions(canonical(out))
            assert not any(c.late for c in out)
            watermark.flushed([c.event for c in out])
            assert reorder.watermark == watermark.value  # later events at or before it will be late
            emitted_at.update({c.offset: now for c in out})
            arrived.clear()
    for c in reorder.flush():
        emitted_at[c.offset] = float("inf")
    for o, t in pushed_at.items():
        deadline = next((check for check in checks if check >= t + max_wait_s), float("inf"))
        assert emitted_at[o] <= deadline


def test_after_a_flush_events_behind_the_new_watermark_are_late() -> None:
    lateness = timedelta(seconds=10)
    reorder = PartitionReorder(lateness, max_wait_s=5.0)
    a = make_event(0, ES.SENT, BASE + timedelta(seconds=3), BASE + timedelta(seconds=4))
    b = make_event(1, ES.QUEUED, BASE + timedelta(seconds=1), BASE + timedelta(seconds=2))
    assert reorder.push(Consumed(PARTITION, 0, a), 0.0) == []
    assert reorder.push(Consumed(PARTITION, 1, b), 1.0) == []
    assert not reorder.overdue(4.999)
    assert reorder.overdue(5.0)
    assert positions(reorder.flush()) == [(1, False), (0, False)]
    assert reorder.watermark == BASE + timedelta(seconds=3)
    at_edge = make_event(2, ES.DELIVERED, BASE + timedelta(seconds=3), BASE + timedelta(seconds=6))
    behind = make_event(3, ES.SCHEDULED, BASE, BASE + timedelta(seconds=6))
    after = make_event(4, ES.OPENED, BASE + timedelta(seconds=3) + MS, BASE + timedelta(seconds=6))
    assert positions(reorder.push(Consumed(PARTITION, 2, at_edge), 6.0)) == [(2, True)]
    assert positions(reorder.push(Consumed(PARTITION, 3, behind), 6.0)) == [(3, True)]
    assert reorder.push(Consumed(PARTITION, 4, after), 6.0) == []
    assert not reorder.overdue(10.999) and reorder.overdue(11.0)


# --------------------------------------------------------------------------- 8. watermark metadata


@PROPS
@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)))
@example(datetime(1970, 1, 7, 3, 15, 48, 678000, tzinfo=UTC))
@example(datetime(2038, 9, 19, 17, 47, 38, 121000, tzinfo=UTC))
def test_watermark_metadata_round_trips_at_millisecond_precision(when: datetime) -> None:
    watermark = when.replace(microsecond=when.microsecond - when.microsecond % 1000)
    encoded = encode_watermark(watermark)
    assert encoded.isascii() and encoded.isdigit()
    assert decode_watermark(encoded) == watermark


@PROPS
@given(st.one_of(st.none(), st.just(""), st.text().filter(lambda s: not s.isdigit())))
@example("-5")
@example("1.5")
@example(" 12")
@example("12ms")
@example("2026-11-23T10:00:00Z")
def test_missing_or_junk_metadata_decodes_to_epoch(metadata: str | None) -> None:
    assert decode_watermark(metadata) == EPOCH


def test_decode_reads_milliseconds_since_epoch() -> None:
    assert decode_watermark("0") == EPOCH
    assert decode_watermark("1795428000123") == datetime(2026, 11, 23, 10, 0, 0, 123000, tzinfo=UTC)
    assert encode_watermark(datetime(2026, 11, 23, 10, 0, 0, 123000, tzinfo=UTC)) == "1795428000123"


# --------------------------------------------------------------------------- 9. future skew clamp


def test_watermark_time_clamps_only_beyond_max_future_skew() -> None:
    received = BASE
    cases = {
        -timedelta(seconds=30): BASE - timedelta(seconds=30),  # the usual: happened before ingest
        MAX_FUTURE_SKEW - MS: BASE + MAX_FUTURE_SKEW - MS,  # sender clock slightly ahead: trusted
        MAX_FUTURE_SKEW: BASE + MAX_FUTURE_SKEW,
        MAX_FUTURE_SKEW + MS: BASE + MAX_FUTURE_SKEW,  # beyond: capped at ingest + skew
        timedelta(days=400): BASE + MAX_FUTURE_SKEW,
    }
    for n, (ahead, expected) in enumerate(cases.items()):
        assert watermark_time(make_event(n, ES.SENT, received + ahead, received)) == expected


@PROPS
@given(
    st.integers(700_000, 400 * 86_400_000).map(lambda ms: ms * MS),  # beyond every follower
    LATENESS,
    st.lists(st.integers(0, 60_000), min_size=1, max_size=10),
)
def test_a_far_future_outlier_cannot_make_later_normal_events_late(
    ahead: timedelta, lateness: timedelta, gaps_ms: list[int]
) -> None:
    """The watermark is capped at ingest + MAX_FUTURE_SKEW - L, however wild the outlier: events that
    follow it, in order, past that cap are on time (without the clamp every one of them would be late)."""
    received = BASE
    outlier = make_event(0, ES.DELIVERED, received + MAX_FUTURE_SKEW + ahead, received)
    reorder = PartitionReorder(lateness, 60.0)
    assert reorder.push(Consumed(PARTITION, 0, outlier), 0.0) == []
    assert reorder.watermark == received + MAX_FUTURE_SKEW - lateness
    t = received + MAX_FUTURE_SKEW - lateness
    out: list[Consumed] = []
    for n, gap in enumerate(gaps_ms, start=1):
        t += (gap + 1) * MS
        event = make_event(n, ES.OPENED, t, t + 200 * MS, message_id=MESSAGE_IDS[n % 3])
        out += reorder.push(Consumed(PARTITION, n, event), 0.0)
    out += reorder.flush()
    assert not any(c.late for c in out)
    assert [c.offset for c in out][-1] == 0  # the outlier, last in event time, leaves last


# --------------------------------------------------------------------------- known gaps (source bugs)


def test_outlier_does_not_make_the_next_minutes_of_normal_events_late() -> None:
    """One event whose sender clock is a day ahead, then normal events received a second later (event
    time ~ ingest time, in order). They are not late by any honest measure, but the clamp lets the
    outlier lift the watermark to its ingest + 5 min - L, so every event of the next ~5 minutes of the
    partition is flagged late and emitted out of order."""
    lateness = timedelta(seconds=5)
    reorder = PartitionReorder(lateness, 60.0)
    normal = make_event(0, ES.QUEUED, BASE - timedelta(seconds=1), BASE - timedelta(seconds=1))
    outlier = make_event(1, ES.DELIVERED, BASE + timedelta(days=1), BASE, message_id=MESSAGE_IDS[1])
    reorder.push(Consumed(PARTITION, 0, normal), 0.0)
    reorder.push(Consumed(PARTITION, 1, outlier), 0.0)
    follower = make_event(2, ES.SENT, BASE + timedelta(seconds=1), BASE + timedelta(seconds=1))
    out = reorder.push(Consumed(PARTITION, 2, follower), 0.0)
    assert not any(c.late for c in out)


@pytest.mark.parametrize("metadata", ["²", "١٢", "9" * 30, "1" * 18])
def test_digit_junk_metadata_decodes_to_epoch(metadata: str) -> None:
    """decode_watermark trusts str.isdigit(), which is true for non-ASCII digits ('²': int() raises
    ValueError; Arabic-Indic '١٢': int() reads 12 -> EPOCH + 12 ms) and for digit strings beyond
    datetime's range (OverflowError). It raises, inside the consumer's adopt() and outside its try,
    instead of returning EPOCH."""
    assert decode_watermark(metadata) == EPOCH
