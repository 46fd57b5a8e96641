"""Per-message state is a merge of the set of distinct events (DESIGN.md "Statuses and precedence").

Property tests check order independence, duplicate immunity, no regression, rebuild-from-rows and
batch merging; unit tests pin the precedence decisions. Expected values come from the spec spelled
out below (STATUS_ORDER) and from plain bookkeeping over the generated events, never from the code
under test.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.batch import Consumed, merge_batch
from processors.rows import event_from_row, event_row, state_row
from processors.state import Describing, Failure, MessageState, fold
from schemas.event import CanonicalEvent, Provider, Source, domain_of
from schemas.status import EmailStatus, EventKind, precedence
from schemas.tables import EVENT_COLUMNS, STATE_COLUMNS
from tests.processors.expected import FAILURES, RANK, STATUS_ORDER

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ES = EmailStatus

# The precedence the design prescribes, lowest first: the happy path climbs SCHEDULED < QUEUED < SENT <
# DELIVERED < OPENED; cancel/failure lose to SENT (they lost a race); a bounce after delivery wins over
# DELIVERED; an open proves delivery; INBOUND is its own lifecycle.

BASE = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
OPERATION_ID = "comms_operation_01jbq8x1z0a2b4c6d8e0f2g4h6"


@dataclass(frozen=True)
class Msg:
    message_id: str
    provider: Provider
    recipient: str
    sender: str | None


MESSAGES = [
    Msg("Lg3kSvpTS1qvc3V2hSzUMQ:jane.doe@example.com", Provider.SENDGRID, "jane.doe@example.com", None),
    Msg("9QmWq0lAQkWUvU3zDZr4dg:carol@example.net", Provider.SENDGRID, "carol@example.net", None),
    Msg(
        "comms_email_01jbq8x2m4f6e9h3k5n7p9r1s3",
        Provider.TWILIO,
        "ann@example.org",
        "billing@shop.example.com",
    ),
    Msg(
        "comms_email_01jbq8y7t5v3w1x9z7b5d3f1h9",
        Provider.TWILIO,
        "bob@example.org",
        "billing@shop.example.com",
    ),
]
MESSAGE_IDS = [m.message_id for m in MESSAGES]

SENDGRID_RAW = {
    ES.QUEUED: ["processed"],
    ES.DELIVERED: ["delivered"],
    ES.OPENED: ["open"],
    ES.UNDELIVERED: ["bounce", "blocked"],
    ES.FAILED: ["dropped"],
}
SENDGRID_OTHER_KINDS = [
    EventKind.DEFERRED,
    EventKind.CLICK,
    EventKind.SPAM_REPORT,
    EventKind.UNSUBSCRIBE,
    EventKind.GROUP_UNSUBSCRIBE,
    EventKind.UNKNOWN,
]


# --------------------------------------------------------------------------- strategies


@st.composite
def canonical_events(draw: st.DrawFn) -> CanonicalEvent:
    """One realistic event of one of a handful of messages (or of an operation)."""
    second = draw(st.integers(0, 4))  # a small range of whole seconds: ties are common
    fields: dict[str, Any] = {"event_id": "placeholder", "source": draw(st.sampled_from(list(Source)))}
    if draw(st.integers(0, 9)) == 0:
        occurred = BASE + timedelta(seconds=second)
        fields |= {
            "message_id": OPERATION_ID,
            "operation_id": OPERATION_ID,
            "kind": EventKind.OPERATION,
            "raw_type": "com.twilio.comms-api.operation.completed",
            "provider": Provider.TWILIO,
        }
    else:
        msg = draw(st.sampled_from(MESSAGES))
        fields |= {
            "message_id": msg.message_id,
            "provider": msg.provider,
            "recipient": msg.recipient,
            "recipient_domain": domain_of(msg.recipient),
            "tags": draw(
                st.sampled_from([{}, {"campaign": "spring-2026"}, {"campaign": "x", "tenant": "acme"}])
            ),
        }
        if msg.provider is Provider.SENDGRID:
            occurred = BASE + timedelta(seconds=second)
            fields["categories"] = draw(st.sampled_from([(), ("transactional",), ("newsletter", "weekly")]))
            if draw(st.booleans()):
                status = draw(st.sampled_from(list(SENDGRID_RAW)))
                fields |= {"kind": EventKind.STATUS, "status": status}
                fields["raw_type"] = draw(st.sampled_from(SENDGRID_RAW[status]))
                if status is ES.OPENED:
                    fields["machine_open"] = draw(st.booleans())
            else:
                kind = draw(st.sampled_from(SENDGRID_OTHER_KINDS))
                fields |= {
                    "kind": kind,
                    "raw_type": "future_event" if kind is EventKind.UNKNOWN else kind.value,
                }
                if kind is EventKind.DEFERRED:
                    fields["attempt"] = draw(st.integers(1, 3))
                    fields["reason"] = "451 4.7.650 rate limited"
                if kind is EventKind.CLICK:
                    fields["url"] = draw(st.sampled_from(["https://a.example/x", "https://b.example/y"]))
        else:
            occurred = BASE + timedelta(seconds=second, milliseconds=draw(st.sampled_from([0, 0, 250])))
            status = draw(st.sampled_from(list(EmailStatus)))
            fields |= {"kind": EventKind.STATUS, "status": status, "raw_type": status.value}
            if draw(st.booleans()):
                fields |= {"sender": msg.sender, "sender_domain": domain_of(msg.sender)}
            if draw(st.booleans()):
                fields["operation_id"] = OPERATION_ID
        status_now = fields.get("status")
        if status_now in FAILURES:
            fields["reason"] = draw(st.sampled_from(["550 5.1.1 no such user", "552 5.2.2 mailbox full"]))
            if fields["raw_type"] in ("bounce", "blocked"):
                fields["bounce_type"] = fields["raw_type"]
                fields["smtp_status"] = "5.1.1" if fields["raw_type"] == "bounce" else None
    fields["occurred_at"] = occurred
    fields["received_at"] = occurred + timedelta(seconds=draw(st.integers(0, 90)))
    return CanonicalEvent.model_validate(fields)


def _with_ids(events: list[CanonicalEvent]) -> list[CanonicalEvent]:
    return [e.model_copy(update={"event_id": f"ev-{i:04d}"}) for i, e in enumerate(events)]


# A set of distinct events: no two share a dedupe key. Events sharing a key are copies of one event
# (same message, time and every field the merge reads); copies are generated by the duplication tests.
event_sets = st.lists(canonical_events(), min_size=1, max_size=30, unique_by=lambda e: e.dedupe_key).map(
    _with_ids
)


def semantic_copy(event: CanonicalEvent, n: int = 1) -> CanonicalEvent:
    """The same transition delivered again: new id, later ingest, maybe another source."""
    other_source = Source.POLLER if event.source is not Source.POLLER else Source.WEBHOOK
    return CanonicalEvent.model_validate(
        {
            **event.model_dump(),
            "event_id": f"{event.event_id}-retry{n}",
            "received_at": event.received_at + timedelta(minutes=5 * n),
            "source": other_source,
        }
    )


# --------------------------------------------------------------------------- helpers


def snapshot(state: MessageState) -> dict[str, Any]:
    """Everything a MessageState says, in a comparable form (event ids are not stable, dedupe keys are)."""
    return {
        "message_id": state.message_id,
        "status": state.status,
        "first_at": dict(state.first_at),
        "counts": dict(state.counts),
        "machine_opens": state.machine_opens,
        "first_event_at": state.first_event_at,
        "last_event_at": state.last_event_at,
        "event_count": state.event_count,
        "concerns_email": state.concerns_email,
        "seen": frozenset(state.seen),
        # What the state keeps of its describing and failure events: every field, compared whole.
        "describing": state.describing,
        "failure": state.failure,
    }


def fold_all(events: Iterable[CanonicalEvent]) -> dict[str, MessageState]:
    states: dict[str, MessageState] = {}
    for event in events:
        states.setdefault(event.message_id, MessageState(event.message_id)).apply(event)
    return states


def snapshots(states: dict[str, MessageState]) -> dict[str, dict[str, Any]]:
    return {message_id: snapshot(state) for message_id, state in states.items()}


def by_message(events: Iterable[CanonicalEvent]) -> dict[str, list[CanonicalEvent]]:
    grouped: dict[str, list[CanonicalEvent]] = defaultdict(list)
    for event in events:
        grouped[event.message_id].append(event)
    return dict(grouped)


def expected_status(events: Iterable[CanonicalEvent]) -> EmailStatus | None:
    statuses = [e.status for e in events if e.status is not None]
    return max(statuses, key=RANK.__getitem__, default=None)


def as_clickhouse_returns(row: Sequence[Any]) -> dict[str, Any]:
    """An email_events row the way clickhouse-connect/chDB hands it back: naive UTC datetimes, lists."""
    d = dict(zip(EVENT_COLUMNS, row, strict=True))
    d["occurred_at"] = d["occurred_at"].replace(tzinfo=None)
    d["received_at"] = d["received_at"].replace(tzinfo=None)
    d["categories"] = list(d["categories"])
    d["tags"] = dict(d["tags"])
    return d


def ev(
    what: EmailStatus | EventKind,
    second: float,
    *,
    message_id: str = "comms_email_01unit",
    event_id: str | None = None,
    machine_open: bool | None = None,
    reason: str | None = None,
    raw_type: str | None = None,
) -> CanonicalEvent:
    status = what if isinstance(what, EmailStatus) else None
    kind = EventKind.STATUS if status is not None else what
    assert isinstance(kind, EventKind)
    occurred = BASE + timedelta(seconds=second)
    return CanonicalEvent(
        event_id=event_id or f"{what}-{second}-{machine_open}",
        message_id=message_id,
        kind=kind,
        status=status,
        raw_type=raw_type or str(what),
        occurred_at=occurred,
        received_at=occurred + timedelta(seconds=1),
        source=Source.WEBHOOK,
        provider=Provider.TWILIO,
        recipient="ann@example.org",
        recipient_domain="example.org",
        machine_open=machine_open,
        reason=reason,
    )


# --------------------------------------------------------------------------- oracle


@PROPS
@given(event_sets)
def test_state_matches_the_set_of_events(events: list[CanonicalEvent]) -> None:
    states = fold_all(events)
    for message_id, mine in by_message(events).items():
        state = states[message_id]
        email = [e for e in mine if e.kind is not EventKind.OPERATION]
        assert state.status == expected_status(email)
        assert state.event_count == len(mine)
        assert state.concerns_email == bool(email)
        assert state.first_event_at == min(e.occurred_at for e in mine)
        assert state.last_event_at == max(e.occurred_at for e in mine)
        for status in EmailStatus:
            times = [e.occurred_at for e in email if e.status is status]
            assert state.first_at.get(status) == (min(times) if times else None)
            assert state.count(status) == len(times)
        for kind in (EventKind.CLICK, EventKind.DEFERRED, EventKind.UNKNOWN):
            assert state.count(kind) == sum(1 for e in email if e.kind is kind)
        assert state.machine_opens == sum(1 for e in email if e.status is ES.OPENED and e.machine_open)
        failures = [e for e in email if e.status in FAILURES]
        if failures:
            # The kept failure is exactly what one of the failure events says, and the earliest.
            assert state.failure is not None and state.failure in [Failure.of(e) for e in failures]
            assert state.failure.occurred_at == min(e.occurred_at for e in failures)
        else:
            assert state.failure is None
        if email:
            # The describing fields all come from one of the email events (none mixed or invented).
            assert state.describing in [Describing.of(e) for e in email]
            assert state.provider is email[0].provider
        else:
            assert state.describing is None and state.provider is None


# --------------------------------------------------------------------------- (a) order independence


@PROPS
@given(st.data(), event_sets)
def test_any_permutation_gives_the_same_state(data: st.DataObject, events: list[CanonicalEvent]) -> None:
    shuffled = data.draw(st.permutations(events))
    assert snapshots(fold_all(shuffled)) == snapshots(fold_all(events))


@PROPS
@given(st.data(), event_sets)
def test_fold_is_order_independent_per_message(data: st.DataObject, events: list[CanonicalEvent]) -> None:
    for message_id, mine in by_message(events).items():
        shuffled = data.draw(st.permutations(mine))
        assert snapshot(fold(message_id, shuffled)) == snapshot(fold(message_id, mine))


# --------------------------------------------------------------------------- (b) duplicate immunity


@st.composite
def events_with_copies(draw: st.DrawFn) -> tuple[list[CanonicalEvent], list[CanonicalEvent]]:
    events = draw(event_sets)
    chosen = draw(st.lists(st.sampled_from(range(len(events))), max_size=2 * len(events)))
    copies: list[CanonicalEvent] = []
    for n, index in enumerate(chosen):
        original = events[index]
        copies.append(original if draw(st.booleans()) else semantic_copy(original, n))
    return events, copies


@PROPS
@given(events_with_copies())
def test_copies_applied_after_change_nothing(pair: tuple[list[CanonicalEvent], list[CanonicalEvent]]) -> None:
    events, copies = pair
    states = fold_all(events)
    before = snapshots(states)
    for copy in copies:
        assert states[copy.message_id].apply(copy) is False
    assert snapshots(states) == before


@PROPS
@given(st.data(), events_with_copies())
def test_copies_in_any_position_change_nothing(
    data: st.DataObject, pair: tuple[list[CanonicalEvent], list[CanonicalEvent]]
) -> None:
    events, copies = pair
    stream = data.draw(st.permutations([*events, *copies]))
    states: dict[str, MessageState] = {}
    first_seen: set[str] = set()
    for event in stream:
        applied = states.setdefault(event.message_id, MessageState(event.message_id)).apply(event)
        # True exactly for the first arrival of each transition, whichever copy that is.
        assert applied is (event.dedupe_key not in first_seen)
        first_seen.add(event.dedupe_key)
    assert snapshots(states) == snapshots(fold_all(events))


@PROPS
@given(canonical_events())
def test_semantic_copy_has_same_dedupe_key(event: CanonicalEvent) -> None:
    copy = semantic_copy(event)
    assert copy.event_id != event.event_id and copy.received_at != event.received_at
    assert copy.dedupe_key == event.dedupe_key
    later = event.model_copy(update={"occurred_at": event.occurred_at + timedelta(seconds=1)})
    assert later.dedupe_key != event.dedupe_key


# --------------------------------------------------------------------------- (c) no regression


@PROPS
@given(st.data(), event_sets)
def test_status_never_regresses(data: st.DataObject, events: list[CanonicalEvent]) -> None:
    stream = data.draw(st.permutations(events))
    states: dict[str, MessageState] = {}
    so_far: dict[str, list[CanonicalEvent]] = defaultdict(list)
    for event in stream:
        state = states.setdefault(event.message_id, MessageState(event.message_id))
        before = state.status
        before_first_at = dict(state.first_at)
        before_version = state.event_count
        assert state.apply(event) is True
        so_far[event.message_id].append(event)
        after = state.status
        assert after == expected_status(so_far[event.message_id])
        if before is not None:
            assert after is not None and precedence(after) >= precedence(before)
        for status, at in before_first_at.items():
            assert state.first_at[status] <= at
        # state_row's version: ReplacingMergeTree keeps the highest, so it must grow with every new event.
        assert state.event_count == before_version + 1
        if state.concerns_email:
            row = dict(zip(STATE_COLUMNS, state_row(state), strict=True))
            assert row["version"] > before_version


# --------------------------------------------------------------------------- (d) rebuild after restart


@PROPS
@given(st.data(), event_sets)
def test_rebuilt_from_rows_then_rest_equals_straight_merge(
    data: st.DataObject, events: list[CanonicalEvent]
) -> None:
    """No API merges two states, so (d) is checked as the processors use it: state rebuilt from the
    email_events rows of the first part, then the rest applied, equals the state of all events."""
    split = data.draw(st.integers(0, len(events)))
    first, rest = events[:split], events[split:]
    stored = [as_clickhouse_returns(event_row(e, 1, i)) for i, e in enumerate(first)]
    rebuilt = {m: fold(m, evs) for m, evs in by_message(event_from_row(r) for r in stored).items()}
    for event in rest:
        rebuilt.setdefault(event.message_id, MessageState(event.message_id)).apply(event)
    assert snapshots(rebuilt) == snapshots(fold_all(events))


# --------------------------------------------------------------------------- (e) batches


@PROPS
@given(st.data(), events_with_copies())
def test_merge_batch_counts_new_events_and_duplicates(
    data: st.DataObject, pair: tuple[list[CanonicalEvent], list[CanonicalEvent]]
) -> None:
    events, copies = pair
    stream = data.draw(st.permutations([*events, *copies]))
    batch = [Consumed(partition=i % 3, offset=100 + i, event=e) for i, e in enumerate(stream)]
    states: dict[str, MessageState] = {}

    def state_of(message_id: str) -> MessageState:
        return states.setdefault(message_id, MessageState(message_id))

    result = merge_batch(batch, state_of)
    distinct = {e.dedupe_key for e in events}
    assert len(result.new_events) == len(distinct)
    assert result.duplicates == len(batch) - len(distinct)
    assert {c.event.dedupe_key for c in result.new_events} == distinct
    # The kept copy of each transition is its first arrival (lowest offset in the batch).
    first_offset: dict[str, int] = {}
    for item in batch:
        first_offset.setdefault(item.event.dedupe_key, item.offset)
    assert sorted(c.offset for c in result.new_events) == sorted(first_offset.values())
    assert set(result.touched) == {e.message_id for e in events}
    email_messages = {e.message_id for e in events if e.kind is not EventKind.OPERATION}
    assert {s.message_id for s in result.changed_states} == email_messages
    assert snapshots(states) == snapshots(fold_all(events))

    # Replaying the same batch (crash before commit, state still cached): nothing new, nothing touched.
    replay = merge_batch(batch, state_of)
    assert replay.new_events == [] and replay.touched == {} and replay.duplicates == len(batch)
    assert snapshots(states) == snapshots(fold_all(events))


@PROPS
@given(st.data(), event_sets)
def test_merge_batch_same_rows_whatever_the_order(data: st.DataObject, events: list[CanonicalEvent]) -> None:
    def loaded(stream: Sequence[CanonicalEvent]) -> tuple[set[str], dict[str, tuple[Any, ...]]]:
        states: dict[str, MessageState] = {}
        batch = [Consumed(0, i, e) for i, e in enumerate(stream)]
        result = merge_batch(batch, lambda m: states.setdefault(m, MessageState(m)))
        event_keys = {c.event.dedupe_key for c in result.new_events}
        rows = {s.message_id: state_row(s) for s in result.changed_states}
        return event_keys, rows

    shuffled = data.draw(st.permutations(events))
    assert loaded(shuffled) == loaded(events)


# --------------------------------------------------------------------------- (f) rows


@PROPS
@given(canonical_events(), st.integers(0, 63), st.integers(0, 2**40))
def test_event_row_round_trip(event: CanonicalEvent, partition: int, offset: int) -> None:
    row = event_row(event, partition, offset)
    assert len(row) == len(EVENT_COLUMNS)
    d = dict(zip(EVENT_COLUMNS, row, strict=True))
    assert d["dedupe_key"] == event.dedupe_key
    assert (d["kafka_partition"], d["kafka_offset"]) == (partition, offset)
    assert d["status"] == (event.status.value if event.status else "")
    back = event_from_row(as_clickhouse_returns(row))
    assert back == event
    assert back.dedupe_key == event.dedupe_key


@PROPS
@given(event_sets)
def test_state_row_for_any_email_state(events: list[CanonicalEvent]) -> None:
    for message_id, mine in by_message(events).items():
        state = fold(message_id, mine)
        email = [e for e in mine if e.kind is not EventKind.OPERATION]
        if not email:
            assert not state.concerns_email
            continue
        row = state_row(state)
        assert len(row) == len(STATE_COLUMNS)
        d = dict(zip(STATE_COLUMNS, row, strict=True))
        msg = next(m for m in MESSAGES if m.message_id == message_id)
        assert d["message_id"] == message_id
        assert d["provider"] == msg.provider.value
        assert d["recipient"] == msg.recipient
        assert d["recipient_domain"] == domain_of(msg.recipient)
        status = expected_status(email)
        assert d["status"] == (status.value if status else "")
        for s in EmailStatus:
            times = [e.occurred_at for e in email if e.status is s]
            assert d[f"{s.value.lower()}_at"] == (min(times) if times else None)
        opens = [e for e in email if e.status is ES.OPENED]
        assert d["open_count"] == len(opens)
        assert d["machine_open_count"] == sum(1 for e in opens if e.machine_open)
        assert d["click_count"] == sum(1 for e in email if e.kind is EventKind.CLICK)
        assert d["deferred_count"] == sum(1 for e in email if e.kind is EventKind.DEFERRED)
        assert d["event_count"] == len(mine)
        assert d["first_event_at"] == min(e.occurred_at for e in mine)
        assert d["last_event_at"] == max(e.occurred_at for e in mine)
        failures = [e for e in email if e.status in FAILURES]
        if failures:
            first = min(e.occurred_at for e in failures)
            assert d["failure_reason"] in {e.reason for e in failures if e.occurred_at == first}
        else:
            assert d["failure_reason"] is None and d["bounce_type"] is None
        assert d["version"] >= len(mine)


# --------------------------------------------------------------------------- precedence decisions


def test_precedence_is_the_designed_total_order() -> None:
    assert sorted(EmailStatus, key=precedence) == STATUS_ORDER
    assert len({precedence(s) for s in EmailStatus}) == len(EmailStatus)


def test_bounce_after_delivery_is_undelivered_and_keeps_delivered_at() -> None:
    delivered = ev(ES.DELIVERED, 1)
    bounce = ev(ES.UNDELIVERED, 3600, reason="552 5.2.2 mailbox full")
    state = fold("comms_email_01unit", [delivered, bounce])
    assert state.status is ES.UNDELIVERED
    assert state.first_at[ES.DELIVERED] == BASE + timedelta(seconds=1)
    assert state.first_at[ES.UNDELIVERED] == BASE + timedelta(seconds=3600)
    d = dict(zip(STATE_COLUMNS, state_row(state), strict=True))
    assert d["status"] == "UNDELIVERED"
    assert d["delivered_at"] == BASE + timedelta(seconds=1)
    assert d["undelivered_at"] == BASE + timedelta(seconds=3600)
    assert d["failure_reason"] == "552 5.2.2 mailbox full"
    # Same result when the bounce is seen first.
    assert snapshot(fold("comms_email_01unit", [bounce, delivered])) == snapshot(state)


def test_late_sent_does_not_move_delivered_back() -> None:
    state = fold("comms_email_01unit", [ev(ES.QUEUED, 0), ev(ES.DELIVERED, 2)])
    assert state.apply(ev(ES.SENT, 1)) is True
    assert state.status is ES.DELIVERED
    assert state.first_at[ES.SENT] == BASE + timedelta(seconds=1)


def test_same_second_tie_is_ordered_by_precedence() -> None:
    for order in ([ev(ES.SENT, 5), ev(ES.DELIVERED, 5)], [ev(ES.DELIVERED, 5), ev(ES.SENT, 5)]):
        assert fold("comms_email_01unit", order).status is ES.DELIVERED


def test_canceled_then_sent_is_sent() -> None:
    state = fold("comms_email_01unit", [ev(ES.SCHEDULED, 0), ev(ES.CANCELED, 1)])
    assert snapshot(state)["status"] is ES.CANCELED
    state.apply(ev(ES.SENT, 2))
    assert state.status is ES.SENT


def test_failed_before_sent_is_sent() -> None:
    for order in ([ev(ES.FAILED, 1), ev(ES.SENT, 2)], [ev(ES.SENT, 2), ev(ES.FAILED, 1)]):
        assert fold("comms_email_01unit", order).status is ES.SENT


def test_failed_without_sent_beats_queued() -> None:
    assert fold("comms_email_01unit", [ev(ES.QUEUED, 0), ev(ES.FAILED, 1)]).status is ES.FAILED
    assert fold("comms_email_01unit", [ev(ES.FAILED, 1), ev(ES.QUEUED, 0)]).status is ES.FAILED


def test_opened_beats_undelivered() -> None:
    for order in ([ev(ES.UNDELIVERED, 5), ev(ES.OPENED, 9)], [ev(ES.OPENED, 9), ev(ES.UNDELIVERED, 5)]):
        state = fold("comms_email_01unit", order)
        assert state.status is ES.OPENED
        assert state.failure is not None and state.failure.status is ES.UNDELIVERED


def test_repeated_opens_are_counted() -> None:
    opens = [
        ev(ES.OPENED, 10, machine_open=True),
        ev(ES.OPENED, 60, machine_open=False),
        ev(ES.OPENED, 600, machine_open=True),
    ]
    state = fold("comms_email_01unit", [ev(ES.DELIVERED, 5), *opens])
    assert state.count(ES.OPENED) == 3
    assert state.machine_opens == 2
    assert state.first_at[ES.OPENED] == BASE + timedelta(seconds=10)
    d = dict(zip(STATE_COLUMNS, state_row(state), strict=True))
    assert (d["open_count"], d["machine_open_count"]) == (3, 2)
    # A webhook retry of one of them is not another open.
    retry = ev(ES.OPENED, 60, machine_open=False, event_id="another-sg-event-id")
    assert state.apply(retry) is False
    assert state.count(ES.OPENED) == 3


def test_engagement_events_do_not_move_status() -> None:
    state = fold(
        "comms_email_01unit",
        [ev(ES.DELIVERED, 1), ev(EventKind.CLICK, 2), ev(EventKind.SPAM_REPORT, 3), ev(EventKind.UNKNOWN, 4)],
    )
    assert state.status is ES.DELIVERED
    assert state.count(EventKind.CLICK) == 1
    assert state.event_count == 4


def test_operation_events_never_create_an_email_state() -> None:
    op = ev(
        EventKind.OPERATION, 3, message_id=OPERATION_ID, raw_type="com.twilio.comms-api.operation.completed"
    )
    state = fold(OPERATION_ID, [op])
    assert state.concerns_email is False
    assert state.status is None
    assert state.describing is None
    result = merge_batch([Consumed(0, 7, op)], lambda m: MessageState(m))
    assert [c.event for c in result.new_events] == [op]  # still an email_events row
    assert result.changed_states == []  # but never an email_state row


# --------------------------------------------------------------------------- known gaps (source bugs)


def test_machine_and_human_open_in_same_second_order_independent() -> None:
    machine = ev(ES.OPENED, 10, machine_open=True, event_id="sg-open-machine")
    human = ev(ES.OPENED, 10, machine_open=False, event_id="sg-open-human")
    a = fold("comms_email_01unit", [machine, human])
    b = fold("comms_email_01unit", [human, machine])
    assert a.machine_opens == b.machine_opens


def test_two_unknown_types_in_same_second_are_both_kept() -> None:
    a = ev(EventKind.UNKNOWN, 10, raw_type="future_event_a", event_id="a")
    b = ev(EventKind.UNKNOWN, 10, raw_type="future_event_b", event_id="b")
    state = MessageState("comms_email_01unit")
    result = merge_batch([Consumed(0, 1, a), Consumed(0, 2, b)], lambda _: state)
    assert len(result.new_events) == 2
