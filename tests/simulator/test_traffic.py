"""The traffic generator: deterministic, realistic, parseable, and its truth agrees with the merge core."""

from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas.event import CanonicalEvent, tag_problems
from schemas.sendgrid import parse_sendgrid_event
from schemas.status import EmailStatus
from schemas.twilio import parse_cloud_event
from simulator.traffic import (
    OUTCOME_RATES,
    SENDGRID,
    TWILIO,
    SignalRates,
    Traffic,
    Truth,
    delivery_rate,
    expected_shares,
    generate,
    status_counts,
)
from tests.schemas.reference_state import fold

S = EmailStatus
RECEIVED_AT = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
CROSS_CHECK_MESSAGES = 3000
MIX_MESSAGES = 20_000


@functools.cache
def parsed(messages: int, seed: int) -> tuple[Traffic, list[CanonicalEvent]]:
    """Traffic and every delivered payload parsed, in arrival order (SendGrid stream, then Twilio's)."""
    traffic = generate(messages, seed)
    events = [parse_sendgrid_event(raw, RECEIVED_AT) for batch in traffic.sendgrid_batches for raw in batch]
    events += [parse_cloud_event(raw, RECEIVED_AT) for batch in traffic.twilio_batches for raw in batch]
    return traffic, events


@functools.cache
def large(seed: int) -> Traffic:
    return generate(MIX_MESSAGES, seed)


def test_same_seed_same_traffic() -> None:
    a, b = generate(500, 42), generate(500, 42)
    assert orjson.dumps(a.sendgrid_batches) == orjson.dumps(b.sendgrid_batches)
    assert orjson.dumps(a.twilio_batches) == orjson.dumps(b.twilio_batches)
    assert a.truth == b.truth
    assert orjson.dumps(generate(500, 43).sendgrid_batches) != orjson.dumps(a.sendgrid_batches)


def test_outcome_mix_matches_configured_rates() -> None:
    n = MIX_MESSAGES
    traffic = large(7)
    assert len(traffic.truth) == n
    counts = status_counts(traffic.truth)
    expected = expected_shares(0.5)
    assert set(counts) == set(expected)
    for status, share in expected.items():
        tolerance = max(0.004, 4 * math.sqrt(share * (1 - share) / n))
        assert abs(counts[status] / n - share) < tolerance, (status, counts[status] / n, share)
    by_provider = Counter(t.provider for t in traffic.truth.values())
    assert abs(by_provider[TWILIO] / n - 0.5) < 0.02
    # The vocabulary each provider can report.
    assert {t.status for t in traffic.truth.values() if t.provider == SENDGRID} == set(
        OUTCOME_RATES[SENDGRID]
    )
    assert {t.status for t in traffic.truth.values() if t.provider == TWILIO} == set(OUTCOME_RATES[TWILIO])


def test_provider_share_and_rates_are_configurable() -> None:
    only_sendgrid = generate(300, 1, twilio_share=0.0, duplicate_rate=0.0)
    assert not only_sendgrid.twilio_batches
    assert all(t.provider == SENDGRID for t in only_sendgrid.truth.values())
    assert only_sendgrid.deliveries == sum(t.distinct_events for t in only_sendgrid.truth.values())
    only_twilio = generate(300, 1, twilio_share=1.0)
    assert not only_twilio.sendgrid_batches and len(only_twilio.truth) == 300
    shifted = generate(10, 1, start=datetime(2030, 1, 1, tzinfo=UTC))
    assert min(at for t in shifted.truth.values() for at in t.first_at.values()) >= datetime(
        2030, 1, 1, tzinfo=UTC
    )
    with pytest.raises(ValueError):
        generate(10, 1, start=datetime(2030, 1, 1))


def test_payloads_have_the_wire_shape() -> None:
    traffic = generate(2000, 3)
    for batch in traffic.sendgrid_batches:
        for ev in batch:
            assert isinstance(ev["timestamp"], int) and isinstance(ev["sg_event_id"], str)
            assert ev["event"] in {"processed", "deferred", "delivered", "open", "click", "bounce", "dropped",
                                   "unsubscribe", "spamreport"}  # fmt: skip
            if ev["event"] == "deferred":
                assert ev["attempt"] in {"1", "2", "3"}
            if ev["event"] == "open":
                assert isinstance(ev["sg_machine_open"], bool) and ev["useragent"] and ev["ip"]
            if ev["event"] == "click":
                assert ev["url"].startswith("https://")
            if ev["event"] == "bounce":
                assert ev["type"] in {"bounce", "blocked"} and ev["reason"]
    for batch in traffic.twilio_batches:
        for ce in batch:
            data = ce["data"]
            assert ce["specversion"] == "1.0" and ce["datacontenttype"] == "application/json"
            assert ce["type"] == f"com.twilio.comms-api.email.{data['status'].lower()}"
            assert ce["source"] == f"/v1/Emails/{data['id']}"
            assert data["id"].startswith("comms_email_") and len(data["id"]) == len("comms_email_") + 32
            assert data["updatedAt"].endswith("Z") and len(data["updatedAt"]) == len(
                "2026-11-23T10:00:00.000Z"
            )
            assert not tag_problems(data["tags"])
            if data["status"] != "INBOUND":
                assert data["operationId"].startswith("comms_operation_")
    assert all(50 <= len(b) <= 500 for b in traffic.sendgrid_batches)
    assert all(1 <= len(b) <= 100 for b in traffic.twilio_batches)
    # The traps: async bounces without a usable sg_message_id (identified by smtp-id), blocks without status.
    bounces = [ev for b in traffic.sendgrid_batches for ev in b if ev["event"] == "bounce"]
    assert any(not ev.get("sg_message_id") and ev["smtp-id"].startswith("<") for ev in bounces)
    assert any(ev["type"] == "blocked" and "status" not in ev for ev in bounces)


def test_every_payload_parses_and_belongs_to_a_known_message() -> None:
    traffic, events = parsed(CROSS_CHECK_MESSAGES, 11)
    assert len(events) == traffic.deliveries == sum(t.deliveries for t in traffic.truth.values())
    assert all(e.message_id in traffic.truth for e in events)
    assert all(e.recipient == traffic.truth[e.message_id].recipient for e in events)
    assert {e.provider.value for e in events} == {SENDGRID, TWILIO}


def test_distinct_dedupe_keys_equal_distinct_events() -> None:
    traffic, events = parsed(CROSS_CHECK_MESSAGES, 11)
    keys = {e.dedupe_key for e in events}
    assert len(keys) == sum(t.distinct_events for t in traffic.truth.values())
    per_message = Counter(message_id for message_id, _ in {(e.message_id, e.dedupe_key) for e in events})
    assert per_message == Counter({m: t.distinct_events for m, t in traffic.truth.items()})


def test_merge_core_agrees_with_truth() -> None:
    traffic, events = parsed(CROSS_CHECK_MESSAGES, 11)
    by_message: defaultdict[str, list[CanonicalEvent]] = defaultdict(list)
    for e in events:
        by_message[e.message_id].append(e)
    disagreements: list[tuple[str, Truth, Any, Any]] = []
    for message_id, truth in traffic.truth.items():
        state = fold(message_id, by_message[message_id])
        got = (state.status, state.first_at, state.count(S.OPENED), state.machine_opens, state.event_count)
        want = (truth.status, truth.first_at, truth.opens, truth.machine_opens, truth.distinct_events)
        if got != want:
            disagreements.append((message_id, truth, got, want))
    assert not disagreements, disagreements[:3]


def test_truth_lists_every_distinct_event() -> None:
    """Truth.events is the expected email_events content: (status or raw type, event time) per message."""
    traffic, events = parsed(CROSS_CHECK_MESSAGES, 11)
    got: defaultdict[str, set[tuple[str, datetime]]] = defaultdict(set)
    for e in events:
        got[e.message_id].add((e.status.value if e.status else e.raw_type, e.occurred_at))
    for message_id, truth in traffic.truth.items():
        assert len(truth.events) == truth.distinct_events == len(set(truth.events))
        assert set(truth.events) == got[message_id], message_id
        first: dict[str, datetime] = {}
        for label, at in truth.events:
            first[label] = min(first.get(label, at), at)
        assert {s.value: at for s, at in truth.first_at.items()} == {
            label: at for label, at in first.items() if label in set(S)
        }
        assert sum(label == S.OPENED for label, _ in truth.events) == truth.opens
    labels = {label for t in traffic.truth.values() for label, _ in t.events}
    assert {"deferred", "click", S.QUEUED, S.OPENED, S.UNDELIVERED} <= labels


def test_truth_times_are_utc_milliseconds_and_follow_the_lifecycle() -> None:
    traffic, _ = parsed(CROSS_CHECK_MESSAGES, 11)
    for truth in traffic.truth.values():
        assert truth.first_at and truth.status in truth.first_at
        for at in truth.first_at.values():
            assert at.utcoffset() == timedelta(0) and at.microsecond % 1000 == 0
            if truth.provider == SENDGRID:
                assert at.microsecond == 0
        t = truth.first_at
        for earlier, later in ((S.SCHEDULED, S.QUEUED), (S.QUEUED, S.SENT), (S.SENT, S.DELIVERED),
                               (S.DELIVERED, S.OPENED), (S.QUEUED, S.DELIVERED), (S.QUEUED, S.UNDELIVERED),
                               (S.QUEUED, S.FAILED), (S.SCHEDULED, S.CANCELED)):  # fmt: skip
            if earlier in t and later in t:
                assert t[earlier] <= t[later], (truth, earlier, later)


def test_duplicates_are_present_at_about_the_configured_rate() -> None:
    traffic, events = parsed(CROSS_CHECK_MESSAGES, 11)
    distinct = sum(t.distinct_events for t in traffic.truth.values())
    assert traffic.deliveries > distinct
    copies = Counter(e.dedupe_key for e in events)
    duplicated_share = sum(1 for n in copies.values() if n > 1) / len(copies)
    assert abs(duplicated_share - 0.15) < 0.02
    # SendGrid resends some events under a new sg_event_id: same dedupe key, several event ids.
    ids: defaultdict[str, set[str]] = defaultdict(set)
    for e in events:
        ids[e.dedupe_key].add(e.event_id)
    assert any(len(v) > 1 for v in ids.values())
    none = generate(500, 2, duplicate_rate=0.0)
    assert none.deliveries == sum(t.distinct_events for t in none.truth.values())


def test_arrival_is_out_of_order_but_bounded() -> None:
    _, events = parsed(CROSS_CHECK_MESSAGES, 11)
    latest: dict[str, datetime] = {}
    later_first = 0
    opens_before_delivered = set()
    delivered_seen: set[str] = set()
    for e in events:
        if e.message_id in latest and e.occurred_at < latest[e.message_id]:
            later_first += 1
        latest[e.message_id] = max(latest.get(e.message_id, e.occurred_at), e.occurred_at)
        if e.status is S.DELIVERED:
            delivered_seen.add(e.message_id)
        if e.status is S.OPENED and e.message_id not in delivered_seen:
            opens_before_delivered.add(e.message_id)
    assert later_first > 0
    assert opens_before_delivered
    # Bounded: each stream still follows time overall (positions jittered a few hundred places, not shuffled).
    for provider in (SENDGRID, TWILIO):
        times = [e.occurred_at for e in events if e.provider.value == provider]
        quarter = len(times) // 4
        assert sorted(times[:quarter])[quarter // 2] < sorted(times[-quarter:])[quarter // 2]


def test_status_counts_and_delivery_rate() -> None:
    def truth(status: EmailStatus) -> Truth:
        return Truth(status, {status: RECEIVED_AT}, 0, 1, 1, TWILIO, "a@b.c")

    sample = {
        "a": truth(S.DELIVERED), "b": truth(S.OPENED), "c": truth(S.UNDELIVERED), "d": truth(S.FAILED),
        "e": truth(S.CANCELED), "f": truth(S.QUEUED), "g": truth(S.SENT), "h": truth(S.INBOUND),
        "i": truth(S.DELIVERED),
    }  # fmt: skip
    assert status_counts(sample) == {S.QUEUED: 1, S.SENT: 1, S.DELIVERED: 2, S.UNDELIVERED: 1, S.OPENED: 1,
                                     S.FAILED: 1, S.CANCELED: 1, S.INBOUND: 1}  # fmt: skip
    assert delivery_rate(sample) == 3 / 6
    assert delivery_rate({}) == 0.0
    rate = delivery_rate(large(7).truth)
    shares = expected_shares(0.5)
    final = sum(shares[s] for s in (S.DELIVERED, S.OPENED, S.UNDELIVERED, S.FAILED, S.CANCELED))
    assert abs(rate - (shares[S.DELIVERED] + shares[S.OPENED]) / final) < 0.01


def test_signal_rates_set_blocks_deferrals_and_spam_reports_and_the_truth_records_them() -> None:
    rates = SignalRates(blocked=0.6, spam_report=0.2, deferral=0.3)
    traffic = generate(3000, seed=8, twilio_share=0.0, signals=rates)
    events = [raw for batch in traffic.sendgrid_batches for raw in batch]
    bounces: dict[str, tuple[bool, str | None]] = {}
    for raw in events:
        if raw["event"] == "bounce":
            mid = parse_sendgrid_event(raw, datetime.now(UTC)).message_id
            bounces[mid] = (raw["type"] == "blocked", raw.get("bounce_classification"))
    truth = traffic.truth
    assert bounces and all(
        (truth[m].blocked, truth[m].bounce_classification) == b for m, b in bounces.items()
    )
    bounced = [t for t in truth.values() if t.status is EmailStatus.UNDELIVERED]
    assert all(t.bounce_classification for t in bounced)
    assert 0.5 < sum(t.blocked for t in bounced) / len(bounced) < 0.7
    delivered = [t for t in truth.values() if t.status in (EmailStatus.DELIVERED, EmailStatus.OPENED)]
    spam = [t for t in delivered if any(label == "spamreport" for label, _ in t.events)]
    assert 0.15 < len(spam) / len(delivered) < 0.25
    deferred = [t for t in delivered if any(label == "deferred" for label, _ in t.events)]
    assert 0.25 < len(deferred) / len(delivered) < 0.35
    assert not any(
        t.blocked or t.bounce_classification for t in generate(300, 8, twilio_share=1.0).truth.values()
    )
    with pytest.raises(ValueError):
        SignalRates(blocked=0.8)  # with the 30% asynchronous bounces, more than every bounce
