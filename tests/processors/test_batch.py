"""merge_batch's transitions and the insert deduplication token (DESIGN.md "Ordered transitions",
"Delivery guarantees"). Expected chains are written by hand from the designed precedence; the property
oracle is plain bookkeeping over the batch, never the code under test."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from processors.batch import Consumed, Transition, dedup_token, merge_batch, transition_value
from processors.state import MessageState, fold
from schemas.event import CanonicalEvent
from schemas.status import EmailStatus, EventKind
from tests.processors.expected import RANK
from tests.processors.test_state_properties import (
    PROPS,
    ev,
    events_with_copies,
    semantic_copy,
)

ES = EmailStatus
MID = "comms_email_01unit"
OTHER = "comms_email_01other"


def batch_of(events: Sequence[CanonicalEvent], partition: int = 2, first_offset: int = 40) -> list[Consumed]:
    return [Consumed(partition, first_offset + i, e) for i, e in enumerate(events)]


def chain(transitions: Sequence[Transition]) -> list[tuple[EmailStatus | None, EmailStatus]]:
    return [(t.previous, t.current) for t in transitions]


def merged(batch: Sequence[Consumed], states: dict[str, MessageState] | None = None) -> list[Transition]:
    known = {} if states is None else states
    return merge_batch(batch, lambda m: known.setdefault(m, MessageState(m))).transitions


# --------------------------------------------------------------------------- hand-written lifecycles

LIFECYCLES: dict[str, tuple[list[CanonicalEvent], list[tuple[EmailStatus | None, EmailStatus]]]] = {
    "happy path with a repeated open": (
        [
            ev(ES.QUEUED, 0),
            ev(ES.SENT, 1),
            ev(ES.DELIVERED, 2),
            ev(EventKind.CLICK, 2.5),
            ev(ES.OPENED, 3, machine_open=False),
            ev(ES.OPENED, 4, machine_open=True),
        ],
        [
            (None, ES.QUEUED),
            (ES.QUEUED, ES.SENT),
            (ES.SENT, ES.DELIVERED),
            (ES.DELIVERED, ES.OPENED),
            (ES.OPENED, ES.OPENED),
        ],
    ),
    "bounce after delivery": (
        [ev(ES.QUEUED, 0), ev(ES.DELIVERED, 1), ev(ES.UNDELIVERED, 3600, reason="552 5.2.2 mailbox full")],
        [(None, ES.QUEUED), (ES.QUEUED, ES.DELIVERED), (ES.DELIVERED, ES.UNDELIVERED)],
    ),
    "cancel that lost the race to send": (
        [ev(ES.SCHEDULED, 0), ev(ES.CANCELED, 1), ev(ES.SENT, 2)],
        [(None, ES.SCHEDULED), (ES.SCHEDULED, ES.CANCELED), (ES.CANCELED, ES.SENT)],
    ),
    "dropped before sending, deferred first": (
        [ev(ES.QUEUED, 0), ev(EventKind.DEFERRED, 1), ev(ES.FAILED, 2, reason="invalid address")],
        [(None, ES.QUEUED), (ES.QUEUED, ES.FAILED)],
    ),
    "open after a bounce": (
        [ev(ES.DELIVERED, 0), ev(ES.UNDELIVERED, 1, reason="550 5.1.1 no such user"), ev(ES.OPENED, 9)],
        [(None, ES.DELIVERED), (ES.DELIVERED, ES.UNDELIVERED), (ES.UNDELIVERED, ES.OPENED)],
    ),
}


@pytest.mark.parametrize("name", list(LIFECYCLES))
def test_transitions_of_a_lifecycle_in_canonical_order(name: str) -> None:
    events, expected = LIFECYCLES[name]
    batch = batch_of(events)
    transitions = merged(batch)
    assert chain(transitions) == expected
    # One transition per status event, carrying that very record; none for clicks or deferrals.
    assert [t.item for t in transitions] == [c for c in batch if c.event.status is not None]


def test_duplicates_and_non_status_events_make_no_transition() -> None:
    queued, sent = ev(ES.QUEUED, 0), ev(ES.SENT, 1)
    batch = batch_of(
        [
            queued,
            ev(EventKind.DEFERRED, 0.5),
            sent,
            semantic_copy(sent),  # a webhook retry / poller copy of the same transition
            queued,  # the very same record again
            ev(EventKind.UNKNOWN, 2, raw_type="future_event"),
            ev(EventKind.SPAM_REPORT, 3),
        ]
    )
    states: dict[str, MessageState] = {}
    result = merge_batch(batch, lambda m: states.setdefault(m, MessageState(m)))
    assert chain(result.transitions) == [(None, ES.QUEUED), (ES.QUEUED, ES.SENT)]
    assert [t.item.offset for t in result.transitions] == [40, 42]
    assert result.duplicates == 2
    # The same batch again (replay before the commit): nothing new, no transition at all.
    again = merge_batch(batch, lambda m: states.setdefault(m, MessageState(m)))
    assert again.transitions == [] and again.duplicates == len(batch)


def test_transitions_of_interleaved_messages_are_per_message() -> None:
    a = [ev(ES.QUEUED, 0), ev(ES.SENT, 2), ev(ES.DELIVERED, 4)]
    b = [ev(ES.QUEUED, 1, message_id=OTHER), ev(ES.FAILED, 3, message_id=OTHER, reason="dropped")]
    batch = batch_of([a[0], b[0], a[1], b[1], a[2]])
    by_message: dict[str, list[tuple[EmailStatus | None, EmailStatus]]] = defaultdict(list)
    for t in merged(batch):
        by_message[t.item.event.message_id].append((t.previous, t.current))
    assert by_message == {
        MID: [(None, ES.QUEUED), (ES.QUEUED, ES.SENT), (ES.SENT, ES.DELIVERED)],
        OTHER: [(None, ES.QUEUED), (ES.QUEUED, ES.FAILED)],
    }


def test_first_transition_starts_from_the_rebuilt_state() -> None:
    states = {MID: fold(MID, [ev(ES.QUEUED, 0), ev(ES.SENT, 1)])}
    late_sent = semantic_copy(ev(ES.SENT, 1))  # already loaded before the crash
    batch = batch_of([late_sent, ev(ES.DELIVERED, 2), ev(ES.OPENED, 3)])
    assert chain(merged(batch, states)) == [(ES.SENT, ES.DELIVERED), (ES.DELIVERED, ES.OPENED)]


def test_a_late_lower_status_is_a_transition_that_does_not_regress() -> None:
    states = {MID: fold(MID, [ev(ES.QUEUED, 0), ev(ES.DELIVERED, 2)])}
    late = batch_of([ev(ES.SENT, 1)])
    assert chain(merged(late, states)) == [(ES.DELIVERED, ES.DELIVERED)]


# --------------------------------------------------------------------------- transition properties


@PROPS
@given(st.data(), events_with_copies())
def test_transitions_chain_and_never_regress(
    data: st.DataObject, pair: tuple[list[CanonicalEvent], list[CanonicalEvent]]
) -> None:
    events, copies = pair
    stream = data.draw(st.permutations([*events, *copies]))
    loaded_before = data.draw(st.integers(0, len(events)), label="already loaded")
    prior = events[:loaded_before]  # what a rebuilt state already holds
    states = {m: fold(m, [e for e in prior if e.message_id == m]) for m in {e.message_id for e in prior}}
    batch = batch_of(stream, first_offset=1000)
    transitions = merged(batch, states)

    # Oracle: walk the batch, first arrival of each dedupe key per message, max rank of statuses so far.
    seen: dict[str, set[str]] = defaultdict(set)
    for e in prior:
        seen[e.message_id].add(e.dedupe_key)
    status = {m: states_before(prior, m) for m in {e.message_id for e in stream}}
    expected: list[tuple[int, EmailStatus | None, EmailStatus]] = []
    for c in batch:
        m, e = c.event.message_id, c.event
        if e.dedupe_key in seen[m]:
            continue
        seen[m].add(e.dedupe_key)
        if e.status is None:
            continue
        before = status[m]
        after = e.status if before is None or RANK[e.status] > RANK[before] else before
        status[m] = after
        expected.append((c.offset, before, after))
    assert [(t.item.offset, t.previous, t.current) for t in transitions] == expected

    # And the shape on its own: per message a chain whose current status never goes down.
    last: dict[str, EmailStatus] = {}
    for t in transitions:
        m = t.item.event.message_id
        assert t.item.event.status is not None
        assert t.previous == last.get(m, states_before(prior, m))
        if t.previous is not None:
            assert RANK[t.current] >= RANK[t.previous]
        assert RANK[t.current] >= RANK[t.item.event.status]
        last[m] = t.current


def states_before(prior: Sequence[CanonicalEvent], message_id: str) -> EmailStatus | None:
    statuses = [e.status for e in prior if e.message_id == message_id and e.status is not None]
    return max(statuses, key=RANK.__getitem__, default=None)


# --------------------------------------------------------------------------- dedup_token

POSITIONS = st.lists(
    st.tuples(st.integers(0, 63), st.integers(0, 2**40)), min_size=1, max_size=40, unique=True
)
TOPICS = st.text(min_size=1, max_size=30)


@PROPS
@given(st.data(), TOPICS, POSITIONS)
def test_same_positions_in_any_order_give_the_same_token(
    data: st.DataObject, topic: str, positions: list[tuple[int, int]]
) -> None:
    shuffled = data.draw(st.permutations(positions))
    assert dedup_token(topic, iter(shuffled)) == dedup_token(topic, positions)


@PROPS
@given(TOPICS, POSITIONS, POSITIONS)
@example("status", [(1, 23)], [(12, 3)])
@example("status", [(0, 1), (0, 2)], [(0, 12)])
@example("status", [(0, 1), (0, 2)], [(0, 1)])
@example("status", [(0, i) for i in range(6)], [(0, i) for i in range(5)])
@example("status", [(3, 9), *((0, i) for i in range(6))], [(0, i) for i in range(6)])
def test_different_positions_give_different_tokens(
    topic: str, a: list[tuple[int, int]], b: list[tuple[int, int]]
) -> None:
    assume(set(a) != set(b))
    assert dedup_token(topic, a) != dedup_token(topic, b)


@PROPS
@given(TOPICS, TOPICS, POSITIONS)
@example("status", "status|", [(0, 1)])
@example("a", "b", [(0, 0)])
def test_different_topics_give_different_tokens(
    topic: str, other: str, positions: list[tuple[int, int]]
) -> None:
    assume(topic != other)
    assert dedup_token(topic, positions) != dedup_token(other, positions)


@PROPS
@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)).map(
        lambda t: t.replace(microsecond=t.microsecond - t.microsecond % 1000)
    ),  # stored: ms
    st.sampled_from([None, ES.QUEUED, ES.DELIVERED]),
    st.booleans(),
)
def test_transition_value_is_the_documented_json(
    at: datetime, previous: EmailStatus | None, late: bool
) -> None:
    event = ev(ES.OPENED, 0, machine_open=True).model_copy(update={"occurred_at": at})
    item = Consumed(3, 17, event, late)
    value = orjson.loads(transition_value(Transition(item, previous, ES.OPENED)))
    assert value == {
        "message_id": MID,
        "status": "OPENED",
        "previous_status": None if previous is None else previous.value,
        "current_status": "OPENED",
        "occurred_at": at.isoformat(),  # what readers have parsed since the topic began
        "late": late,
        "event_id": event.event_id,
        "dedupe_key": event.dedupe_key,
        "provider": event.provider.value,
    }
