"""Webhook planning and payloads (pure): drops, copies, bursts, and the contract with ingest: every
payload parses, and a webhook and a poll of the same status share the dedupe key."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from schemas.event import CanonicalEvent, Source
from schemas.sendgrid import parse_sendgrid_event
from schemas.signatures import (
    SENDGRID_TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    verify_sendgrid,
    verify_twilio,
)
from schemas.status import EmailStatus, EventKind
from schemas.twilio import parse_cloud_event, parse_email_resource
from simulator.clock import ManualSource, SimClock
from simulator.core import Simulator
from simulator.lifecycle import Outcomes
from simulator.model import Address
from simulator.payloads import Signer, WebhookFormat, body, sendgrid_message_id
from simulator.validation import Recipient, SendRequest
from simulator.webhooks import Batch, WebhookPlanner, WebhookPolicy, WebhookTarget

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
TWILIO = WebhookTarget("http://127.0.0.1:1/webhooks/twilio/events")
SENDGRID = WebhookTarget("http://127.0.0.1:1/webhooks/sendgrid/events", WebhookFormat.SENDGRID)
OPENS = Outcomes(
    failed=0.0, undelivered=0.0, async_bounce=0.0, opened=1.0, inbound=0.0, extra_opens=(0.0, 0.0, 1.0, 0.0)
)


def settled_simulator(emails: int, outcomes: Outcomes | None = None) -> Simulator:
    source = ManualSource()
    sim = Simulator(SimClock(T0, 1.0, source), outcomes, seed=5)
    recipients = tuple(Recipient(f"r{i}@example.com") for i in range(emails))
    sim.accept(SendRequest(Address("news@acme-shop.com"), recipients, "Hi", {"campaign": "c1"}, None))
    source.advance(sim.outcomes.longest_s + 10_000)
    return sim


def planned(
    sim: Simulator, policy: WebhookPolicy, *targets: WebhookTarget
) -> tuple[WebhookPlanner, list[Batch]]:
    planner = WebhookPlanner(targets or (TWILIO,), policy, random.Random(1))
    for happening in sim.due(sim.clock.now()):
        planner.add(happening, sim, now=0.0)
    return planner, planner.take(now=1e9)


def test_without_drops_or_copies_every_happening_leaves_once() -> None:
    sim = settled_simulator(50)
    planner, batches = planned(sim, WebhookPolicy(duplicate_rate=0.0, burst=7))
    events = [e for b in batches for e in b.events]
    assert len(events) == planner.stats.events == planner.stats.copies and planner.stats.dropped == 0
    assert all(1 <= len(b.events) <= 7 for b in batches)
    assert len({e["id"] for e in events}) == len(events)
    assert planner.pending == 0


def test_drops_and_duplicates_follow_the_policy() -> None:
    sim = settled_simulator(400)
    planner, batches = planned(sim, WebhookPolicy(drop_rate=0.3, duplicate_rate=0.2))
    stats = planner.stats
    assert abs(stats.dropped / stats.events - 0.3) < 0.04
    copies = Counter(e["id"] for b in batches for e in b.events)
    assert len(copies) == stats.events - stats.dropped
    assert abs(sum(1 for n in copies.values() if n > 1) / len(copies) - 0.2) < 0.04
    nothing, _ = planned(sim, WebhookPolicy(drop_rate=1.0))
    assert nothing.stats.copies == 0


def test_copies_leave_out_of_order_and_in_bursts() -> None:
    sim = settled_simulator(200)
    planner = WebhookPlanner((TWILIO,), WebhookPolicy(max_delay_s=2.0, burst_share=0.5), random.Random(2))
    for happening in sim.due(sim.clock.now()):
        planner.add(happening, sim, now=100.0)
    waves = [planner.take(now=100.0 + step / 10) for step in range(31)]
    times = [e["time"] for wave in waves for b in wave for e in b.events]
    assert times != sorted(times), "arrival order is not event order"
    sizes = [sum(len(b.events) for b in wave) for wave in waves]
    assert max(sizes) > 3 * (sum(sizes) / len(sizes)), "burst instants release many at once"
    assert planner.pending == 0


def test_a_webhook_and_a_poll_of_one_status_share_the_dedupe_key() -> None:
    sim = settled_simulator(30, OPENS)
    _, batches = planned(sim, WebhookPolicy(duplicate_rate=0.0))
    received = NOW
    events = [parse_cloud_event(e, received) for b in batches for e in b.events]
    opened = [e for e in events if e.status is EmailStatus.OPENED]
    assert len(opened) == 30 * 3, "every open leaves as its own CloudEvent"
    for email in sim.emails.values():
        polled = parse_email_resource(email.resource(sim.clock.now()), received)
        assert polled.source is Source.POLLER and polled.status is EmailStatus.OPENED
        mine = [e for e in opened if e.message_id == email.id]
        # Repeated opens carry the unchanged resource: one transition, the poll's.
        assert {e.dedupe_key for e in mine} == {polled.dedupe_key}
    operations = [e for e in events if e.kind is EventKind.OPERATION]
    assert sorted(e.raw_type for e in operations) == [
        "com.twilio.comms-api.operation.completed",
        "com.twilio.comms-api.operation.processing",
    ]


def test_sendgrid_events_parse_as_the_same_message() -> None:
    sim = settled_simulator(20, replace(OPENS, extra_opens=(1.0,)))
    _, batches = planned(sim, WebhookPolicy(duplicate_rate=0.0), SENDGRID)
    events: list[CanonicalEvent] = [parse_sendgrid_event(e, NOW) for b in batches for e in b.events]
    by_message = Counter((e.message_id, e.raw_type) for e in events)
    for email in sim.emails.values():
        mid = sendgrid_message_id(email)
        assert (
            by_message[(mid, "processed")] == by_message[(mid, "delivered")] == by_message[(mid, "open")] == 1
        )


@pytest.mark.parametrize("target_format", list(WebhookFormat))
def test_bodies_are_signed_as_the_receiver_checks(target_format: WebhookFormat) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signer = Signer("twilio-token", key)
    payload = body(target_format, [{"a": 1}, {"b": 2}])
    assert orjson.loads(payload) == [{"a": 1}, {"b": 2}]
    url, headers = signer.sign(target_format, "http://127.0.0.1:9/hook", payload, now=1_800_000_000.0)
    if target_format is WebhookFormat.TWILIO:
        verify_twilio(url, payload, "application/json", headers[TWILIO_SIGNATURE_HEADER], "twilio-token")
    else:
        assert payload.count(b"\r\n") == 2
        signature = headers["X-Twilio-Email-Event-Webhook-Signature"]
        timestamp = headers[SENDGRID_TIMESTAMP_HEADER]
        verify_sendgrid(payload, signature, timestamp, key.public_key(), 1_800_000_000.0, 300)


SIGNALS = Outcomes(
    failed=0.0, undelivered=0.3, slow=0.3, async_bounce=0.0, inbound=0.0, blocked=0.5, spam_report=0.2,
    unsubscribe=0.1,
)  # fmt: skip


def test_sendgrid_webhooks_carry_the_signals_at_the_configured_rates() -> None:
    """Deferrals, blocks with classifications, spam reports and unsubscribes leave as SendGrid events
    that parse into their kinds, exactly as the simulator's truth has them; Event Streams carries none."""
    sim = settled_simulator(600, SIGNALS)
    _, batches = planned(sim, WebhookPolicy(duplicate_rate=0.0), SENDGRID, TWILIO)
    sendgrid = [parse_sendgrid_event(e, NOW) for b in batches if b.target == 0 for e in b.events]
    twilio = [parse_cloud_event(e, NOW) for b in batches if b.target == 1 for e in b.events]
    assert all(e.kind in (EventKind.STATUS, EventKind.OPERATION) for e in twilio)
    truth = {sendgrid_message_id(sim.emails[t.id]): t for t in sim.truth(sim.clock.now())}
    kinds: dict[EventKind, Counter[str]] = {k: Counter() for k in EventKind}
    blocked, classified = set(), {}
    for e in sendgrid:
        kinds[e.kind][e.message_id] += 1
        if e.status is EmailStatus.UNDELIVERED:
            classified[e.message_id] = e.bounce_classification
            if e.raw_type == "blocked":
                blocked.add(e.message_id)
    assert kinds[EventKind.DEFERRED] == Counter({m: t.deferrals for m, t in truth.items() if t.deferrals})
    assert set(kinds[EventKind.SPAM_REPORT]) == {m for m, t in truth.items() if t.spam_reported}
    assert set(kinds[EventKind.UNSUBSCRIBE]) == {m for m, t in truth.items() if t.unsubscribed}
    assert blocked == {m for m, t in truth.items() if t.blocked}
    assert classified == {m: t.bounce_classification for m, t in truth.items() if t.bounce_classification}
    # The configured rates, roughly (600 emails).
    delivered = sum(t.status in (EmailStatus.DELIVERED, EmailStatus.OPENED) for t in truth.values())
    bounced = sum(t.status is EmailStatus.UNDELIVERED for t in truth.values())
    assert 0.12 < len(kinds[EventKind.SPAM_REPORT]) / delivered < 0.28
    assert 0.35 < len(blocked) / bounced < 0.65
    assert 0.2 < len(kinds[EventKind.DEFERRED]) / len(truth) < 0.4
