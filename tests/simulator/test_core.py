"""The simulated account (pure): lifecycles climb the precedence, resources and truth agree, time and
retention decide what exists, happenings come once and in order."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.status import EmailStatus, OperationStatus, precedence
from simulator.clock import ManualSource, SimClock
from simulator.core import HappeningKind, Simulator
from simulator.lifecycle import Outcomes, plan_email, plan_operation
from simulator.model import Address
from simulator.paging import ListQuery
from simulator.validation import Recipient, SendRequest

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ES = EmailStatus


def simulator(outcomes: Outcomes | None = None) -> tuple[Simulator, ManualSource]:
    source = ManualSource()
    return Simulator(SimClock(T0, 1.0, source), outcomes, seed=1), source


def request(n: int, send_at: datetime | None = None) -> SendRequest:
    recipients = tuple(Recipient(f"r{i}@example.com") for i in range(n))
    return SendRequest(Address("news@acme-shop.com"), recipients, "Hi", {"campaign": "c1"}, send_at)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32), ahead=st.one_of(st.none(), st.integers(1, 7 * 86_400)))
def test_every_lifecycle_climbs_the_precedence(seed: int, ahead: int | None) -> None:
    send_at = T0 + timedelta(seconds=ahead) if ahead else None
    plan = plan_email(random.Random(seed), Outcomes(), T0, send_at)
    times = [t.at for t in plan.transitions]
    ranks = [precedence(t.status) for t in plan.transitions]
    assert times == sorted(set(times)), "times strictly increase"
    assert ranks == sorted(set(ranks)), "each status outranks the one before: current = highest seen"
    assert (plan.transitions[0].status is ES.SCHEDULED) == (send_at is not None)
    if plan.transitions[-1].status is ES.CANCELED:
        assert [t.status for t in plan.transitions] == [ES.SCHEDULED, ES.CANCELED]
        assert send_at is not None and plan.transitions[-1].at <= send_at
    if plan.extra_opens:
        assert plan.transitions[-1].status is ES.OPENED
        assert list(plan.extra_opens) == sorted(set(plan.extra_opens)) and plan.extra_opens[0] > times[-1]
    assert plan.transitions[-1].status in {ES.DELIVERED, ES.OPENED, ES.UNDELIVERED, ES.FAILED, ES.CANCELED}


def test_outcome_rates_are_what_the_outcomes_say() -> None:
    rng, outcomes = random.Random(7), Outcomes()
    finals = Counter(plan_email(rng, outcomes, T0, None).transitions[-1].status for _ in range(20_000))
    share = {status: count / 20_000 for status, count in finals.items()}
    assert abs(share[ES.FAILED] - outcomes.failed) < 0.01
    delivered = (1 - outcomes.failed) * (1 - outcomes.undelivered)
    assert abs(share[ES.OPENED] - delivered * outcomes.opened) < 0.015
    bounced = (1 - outcomes.failed) * outcomes.undelivered + delivered * outcomes.async_bounce
    assert abs(share[ES.UNDELIVERED] - bounced) < 0.01


def test_operations_complete_once_every_email_left_the_queue_or_cancel_when_all_did() -> None:
    rng = random.Random(3)
    plans = [plan_email(rng, Outcomes(), T0, None) for _ in range(50)]
    steps = plan_operation(T0, None, plans)
    assert [s.status for s in steps] == [OperationStatus.PROCESSING, OperationStatus.COMPLETED]
    assert steps[-1].at == max(p.transitions[1].at for p in plans)
    send_at = T0 + timedelta(hours=1)
    canceled = [plan_email(random.Random(s), Outcomes(canceled=1.0), T0, send_at) for s in range(5)]
    statuses = [s.status for s in plan_operation(T0, send_at, canceled)]
    assert statuses == [OperationStatus.SCHEDULED, OperationStatus.CANCELED]
    kept = [plan_email(random.Random(s), Outcomes(canceled=0.0), T0, send_at) for s in range(5)]
    steps = plan_operation(T0, send_at, kept)
    assert [s.status for s in steps] == [
        OperationStatus.SCHEDULED,
        OperationStatus.PROCESSING,
        OperationStatus.COMPLETED,
    ]
    assert steps[1].at == send_at


def test_resources_truth_and_time_agree() -> None:
    sim, source = simulator()
    operation = sim.accept(request(40))
    email = sim.emails[operation.email_ids[0]]
    assert sim.operation_resource(operation, sim.clock.now())["status"] == "PROCESSING"
    for step in (0.0, 1.0, 10.0, 120.0, 7200.0, 86_400.0):
        source.advance(step)
        now = sim.clock.now()
        resource = email.resource(now)
        [truth] = [t for t in sim.truth(now) if t.id == email.id]
        assert resource["status"] == truth.status.value
        assert resource["updatedAt"] == truth.since.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert truth.transitions[-1].at == truth.since
    assert sim.settled(sim.clock.now())
    stats = sim.operation_resource(operation, sim.clock.now())["stats"]
    assert stats["total"] == 40 and sum(v for k, v in stats.items() if k != "total") <= 40


def test_happenings_come_once_in_time_order() -> None:
    always_opened = Outcomes(failed=0.0, undelivered=0.0, async_bounce=0.0, opened=1.0, inbound=0.0)
    sim, source = simulator(replace(always_opened, extra_opens=(0.0, 0.0, 0.0, 1.0)))
    sim.accept(request(5))
    seen = []
    for _ in range(30):
        source.advance(1000)
        seen += sim.due(sim.clock.now())
    assert [h.at for h in seen] == sorted(h.at for h in seen)
    assert len({h.seq for h in seen}) == len(seen)
    kinds = Counter(h.kind for h in seen)
    assert kinds[HappeningKind.OPEN] == 5 * 3  # three more opens each
    assert kinds[HappeningKind.OPERATION] == 2  # PROCESSING, COMPLETED
    assert sim.pending == 0 and sim.due(sim.clock.now()) == []


def test_replies_exist_only_from_their_arrival_and_everything_leaves_after_seven_days() -> None:
    sim, source = simulator(Outcomes(inbound=1.0, failed=0.0, undelivered=0.0))
    sim.accept(request(3))
    replies = [e for e in sim.emails.values() if e.operation_id is None]
    assert len(replies) == 3 and all(e.final.status is ES.INBOUND for e in replies)
    listed = sim.list_emails(ListQuery(page_size=1000), sim.clock.now())[0]
    assert len(listed) == 3, "replies are not there before they arrive"
    source.advance(sim.outcomes.longest_s + 3600)
    assert len(sim.list_emails(ListQuery(page_size=1000), sim.clock.now())[0]) == 6
    assert sim.email(replies[0].id, sim.clock.now()) is not None
    source.advance(7 * 86_400)
    assert sim.list_emails(ListQuery(page_size=1000), sim.clock.now()) == ([], None)
    assert sim.email(replies[0].id, sim.clock.now()) is None
