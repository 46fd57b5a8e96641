"""The alert state machine: examples, then properties over arbitrary measurement sequences."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from alerting.state_machine import KeyState, Notification, Phase, Sample, restored, step
from schemas.alert_rules import AlertRule

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RULE = AlertRule(
    name="fail", metric="failure_rate", threshold=0.2, by="sender_domain", min_volume=50, for_s=60,
    cooldown_s=300,
)  # fmt: skip

# (seconds since the previous evaluation, rate, outcomes) for one key
Tick = tuple[int, float, int]


def run(rule: AlertRule, ticks: Sequence[Tick], key: str = "shop.example") -> list[Notification]:
    states: dict[str, KeyState] = {}
    now, out = T0, []
    for gap, value, volume in ticks:
        now += timedelta(seconds=gap)
        samples = {key: Sample(value, volume)} if volume else {}
        states, notes = step(rule, states, samples, now)
        out.extend(notes)
    return out


def test_fires_after_for_s_then_resolves_once() -> None:
    ticks = [(30, 0.1, 100), (30, 0.5, 100), (30, 0.5, 100), (30, 0.6, 100), (30, 0.5, 100), (30, 0.1, 100)]
    notes = run(RULE, ticks)
    assert [(n.state, n.at - T0, n.value, n.volume) for n in notes] == [
        ("firing", timedelta(seconds=120), 0.6, 100),  # breached since 60 s, for_s = 60
        ("resolved", timedelta(seconds=180), 0.1, 100),
    ]
    assert notes[0].reason == "failure_rate above 0.2 for 60s"
    assert notes[1].reason == "failure_rate back at or below 0.2"


def test_threshold_is_exclusive_and_volume_loss_resolves_with_its_reason() -> None:
    assert run(RULE, [(30, 0.2, 100)] * 10) == []
    notes = run(RULE, [(60, 0.9, 100), (60, 0.9, 100), (60, 0.9, 10)])
    assert [n.state for n in notes] == ["firing", "resolved"]
    assert notes[1].reason == "volume 10 fell below min_volume 50"
    gone = run(RULE, [(60, 0.9, 100), (60, 0.9, 100), (60, 0.0, 0)])  # no outcomes left at all
    assert [(n.state, n.value, n.volume) for n in gone] == [("firing", 0.9, 100), ("resolved", None, 0)]


def test_cooldown_delays_a_new_firing_until_it_ends() -> None:
    ticks = [(0, 0.9, 100), (60, 0.9, 100), (60, 0.0, 100)] + [(60, 0.9, 100)] * 6
    notes = run(RULE, ticks)
    assert [(n.state, (n.at - T0).seconds) for n in notes] == [
        ("firing", 60),
        ("resolved", 120),
        ("firing", 420),  # breached since 180 s, but quiet until 120 + 300
    ]


def test_for_zero_fires_at_the_first_breach_and_keys_are_independent() -> None:
    rule = RULE.model_copy(update={"for_s": 0})
    states, notes = step(rule, {}, {"a": Sample(0.5, 60), "b": Sample(0.1, 60)}, T0)
    assert [(n.key, n.state) for n in notes] == [("a", "firing")]
    assert states == {"a": KeyState(Phase.FIRING, T0, None)}


def test_restored_firing_does_not_fire_again_and_restored_resolve_keeps_its_cooldown() -> None:
    fired = T0 - timedelta(minutes=5)
    states = {"k": restored(RULE, "firing", fired)}
    states, notes = step(RULE, states, {"k": Sample(0.9, 100)}, T0)
    assert notes == [] and states["k"].phase is Phase.FIRING
    states, notes = step(RULE, states, {"k": Sample(0.1, 100)}, T0 + timedelta(seconds=30))
    assert [n.state for n in notes] == ["resolved"]
    quiet = {"k": restored(RULE, "resolved", T0)}
    for seconds in range(0, 300, 30):
        quiet, notes = step(RULE, quiet, {"k": Sample(0.9, 100)}, T0 + timedelta(seconds=seconds))
        assert notes == []
    _, notes = step(RULE, quiet, {"k": Sample(0.9, 100)}, T0 + timedelta(seconds=300))
    assert [n.state for n in notes] == ["firing"]


rules = st.builds(
    AlertRule,
    name=st.just("r"),
    metric=st.sampled_from(["failure_rate", "bounce_rate"]),
    threshold=st.sampled_from([0.05, 0.1, 0.5]),
    window_s=st.just(300),
    by=st.just("recipient_domain"),
    min_volume=st.integers(1, 100),
    for_s=st.integers(0, 300),
    cooldown_s=st.integers(0, 900),
)
ticks = st.lists(
    st.tuples(st.integers(1, 120), st.floats(0, 1), st.integers(0, 150)), min_size=1, max_size=60
)


def breach_times(rule: AlertRule, seq: Sequence[Tick]) -> list[tuple[datetime, bool]]:
    now, out = T0, []
    for gap, value, volume in seq:
        now += timedelta(seconds=gap)
        out.append((now, volume >= rule.min_volume and volume > 0 and value > rule.threshold))
    return out


@given(rules, ticks)
def test_firing_and_resolved_alternate_and_follow_the_breach_signal(rule: AlertRule, seq: list[Tick]) -> None:
    notes = run(rule, seq)
    assert [n.state for n in notes] == ["firing", "resolved"] * (len(notes) // 2) + ["firing"] * (
        len(notes) % 2
    )
    timeline = breach_times(rule, seq)
    for note in notes:
        breached_then = dict(timeline)[note.at]
        assert breached_then == (note.state == "firing")
        if note.state == "firing":  # nothing below min_volume, nothing at or under the threshold
            assert note.volume >= rule.min_volume and note.value is not None and note.value > rule.threshold


@given(rules, ticks)
def test_fires_only_after_an_unbroken_breach_of_for_s(rule: AlertRule, seq: list[Tick]) -> None:
    timeline = breach_times(rule, seq)
    for note in run(rule, seq):
        if note.state != "firing":
            continue
        before = [(t, b) for t, b in timeline if t <= note.at]
        start = note.at
        for t, b in reversed(before):  # walk back over the unbroken breached run
            if not b:
                break
            start = t
        assert note.at - start >= timedelta(seconds=rule.for_s)


@given(
    rules,
    st.lists(st.lists(st.integers(1, 120), min_size=1, max_size=8), min_size=1, max_size=12),
    st.integers(1, 600),
)
def test_oscillation_faster_than_for_s_never_fires(
    rule: AlertRule, runs: list[list[int]], calm_gap: int
) -> None:
    """The rate goes above the threshold for a while, then back under, again and again, each time for
    less than for_s: however long it goes on and however high the rate, nothing fires."""
    seq: list[Tick] = []
    for gaps in runs:
        span = 0
        seq.append((calm_gap, 1.0, 150))  # the run starts
        for gap in gaps[1:]:
            if span + gap >= rule.for_s:
                break
            span += gap
            seq.append((gap, 1.0, 150))
        seq.append((1, 0.0, 150))  # back under the threshold
    if rule.for_s > 0:
        assert run(rule, seq) == []


@given(rules, ticks)
def test_cooldown_is_respected(rule: AlertRule, seq: list[Tick]) -> None:
    notes = run(rule, seq)
    for resolved, fired in zip(notes[1::2], notes[2::2], strict=False):
        assert fired.at - resolved.at >= timedelta(seconds=rule.cooldown_s)


@given(rules, ticks)
def test_below_min_volume_nothing_fires(rule: AlertRule, seq: list[Tick]) -> None:
    starved = [(gap, value, min(volume, rule.min_volume - 1)) for gap, value, volume in seq]
    assert run(rule, starved) == []


@given(rules, ticks, st.integers(0, 60))
def test_a_restart_from_the_recorded_transitions_sends_no_duplicate(
    rule: AlertRule, seq: list[Tick], cut: int
) -> None:
    """Stop after any evaluation and restore from the last recorded transition: the notifications
    still alternate (no second firing), and they are exactly those of an uninterrupted run unless a
    breach was pending at the stop (pending is not recorded, so its for_s starts over)."""
    cut = min(cut, len(seq))
    key = "shop.example"
    states: dict[str, KeyState] = {}
    now = T0
    head: list[Notification] = []
    whole_tail: list[Notification] = []
    for i, (gap, value, volume) in enumerate(seq):
        now += timedelta(seconds=gap)
        states, notes = step(rule, states, {key: Sample(value, volume)} if volume else {}, now)
        (head if i < cut else whole_tail).extend(notes)
        if i == cut - 1:
            pending_at_cut = key in states and states[key].phase is Phase.PENDING
            recorded = {key: restored(rule, head[-1].state, head[-1].at)} if head else {}
    if cut == 0:
        pending_at_cut, recorded = False, {}
    now = T0 + timedelta(seconds=sum(gap for gap, _, _ in seq[:cut]))
    tail: list[Notification] = []
    for gap, value, volume in seq[cut:]:
        now += timedelta(seconds=gap)
        recorded, notes = step(rule, recorded, {key: Sample(value, volume)} if volume else {}, now)
        tail.extend(notes)
    states_seq = [n.state for n in head + tail]
    assert states_seq == ["firing", "resolved"] * (len(states_seq) // 2) + ["firing"] * (len(states_seq) % 2)
    if not pending_at_cut:
        assert tail == whole_tail
