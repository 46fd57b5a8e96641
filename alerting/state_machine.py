"""The alert state machine, per (rule, key): pure functions of (states, measurements, now).

OK -> PENDING when the rule is *breached* (rate above the threshold over at least ``min_volume``
outcomes) -> FIRING once it stayed breached for ``for_s`` -> resolved (back to OK) at the first
evaluation that is not breached: the rate is at or below the threshold, or fewer than ``min_volume``
outcomes remain in the window (an alert on a domain that stopped sending would otherwise never
resolve; the resolve says which reason applied). After a resolve the key may go PENDING again, but
cannot fire before ``cooldown_s`` has passed.

``step`` never mutates its input: the runner keeps the new states only after the transitions were
recorded, so a failed write is retried on the next evaluation instead of being lost or doubled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Literal

from schemas.alert_rules import AlertRule


class Phase(Enum):
    OK = 0
    PENDING = 1
    FIRING = 2


@dataclass(frozen=True)
class Sample:
    """One key's figures over the rule's window: the rate (None when outcomes == 0) and outcomes."""

    value: float | None
    volume: int


NO_DATA = Sample(None, 0)


@dataclass(frozen=True)
class KeyState:
    phase: Phase = Phase.OK
    since: datetime | None = None  # PENDING: breached since; FIRING: fired at
    quiet_until: datetime | None = None  # end of the cooldown after the last resolve


@dataclass(frozen=True)
class Notification:
    at: datetime
    rule: str
    metric: str
    dimension: str
    key: str
    state: Literal["firing", "resolved"]
    value: float | None
    threshold: float
    volume: int
    window_s: int
    reason: str  # why it fired or resolved, for people


def breached(rule: AlertRule, sample: Sample) -> bool:
    return sample.value is not None and sample.volume >= rule.min_volume and sample.value > rule.threshold


def step(
    rule: AlertRule, states: Mapping[str, KeyState], samples: Mapping[str, Sample], now: datetime
) -> tuple[dict[str, KeyState], list[Notification]]:
    """Advance every key of ``rule`` to ``now``. Keys missing from ``samples`` had no outcomes in the
    window. Returns the new states (keys back to a plain OK are dropped) and the transitions."""
    new: dict[str, KeyState] = {}
    out: list[Notification] = []
    for key in sorted(set(states) | set(samples)):
        sample = samples.get(key, NO_DATA)
        state, note = _advance(rule, key, states.get(key, KeyState()), sample, now)
        if note is not None:
            out.append(note)
        if state.phase is not Phase.OK or (state.quiet_until is not None and state.quiet_until > now):
            new[key] = state
    return new, out


def _advance(
    rule: AlertRule, key: str, state: KeyState, sample: Sample, now: datetime
) -> tuple[KeyState, Notification | None]:
    if not breached(rule, sample):
        if state.phase is Phase.FIRING:
            quiet = now + timedelta(seconds=rule.cooldown_s)
            return KeyState(Phase.OK, None, quiet), _note(rule, key, "resolved", sample, now)
        return replace(state, phase=Phase.OK, since=None), None
    if state.phase is Phase.FIRING:
        return state, None
    since = state.since if state.phase is Phase.PENDING and state.since is not None else now
    cooled = state.quiet_until is None or now >= state.quiet_until
    if cooled and now - since >= timedelta(seconds=rule.for_s):
        return KeyState(Phase.FIRING, now, None), _note(rule, key, "firing", sample, now)
    return KeyState(Phase.PENDING, since, state.quiet_until), None


def _note(
    rule: AlertRule, key: str, state: Literal["firing", "resolved"], sample: Sample, now: datetime
) -> Notification:
    if state == "firing":
        reason = f"{rule.metric} above {rule.threshold:g} for {rule.for_s}s"
    elif sample.volume < rule.min_volume:
        reason = f"volume {sample.volume} fell below min_volume {rule.min_volume}"
    else:
        reason = f"{rule.metric} back at or below {rule.threshold:g}"
    return Notification(
        at=now,
        rule=rule.name,
        metric=rule.metric,
        dimension=rule.by,
        key=key,
        state=state,
        value=sample.value,
        threshold=rule.threshold,
        volume=sample.volume,
        window_s=rule.window_s,
        reason=reason,
    )


def restored(rule: AlertRule, last_state: str, at: datetime) -> KeyState:
    """The state of a key from its last recorded transition (the ``alerts`` table) after a restart:
    a firing not yet resolved is still firing; a recent resolve still holds its cooldown."""
    if last_state == "firing":
        return KeyState(Phase.FIRING, at, None)
    return KeyState(Phase.OK, None, at + timedelta(seconds=rule.cooldown_s))
