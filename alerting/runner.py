"""The alert loop: every interval, measure every rule, advance the state machine, record, then notify.

Order per evaluation: transitions are written to the ``alerts`` table first and the new states kept
only after that write succeeded; notifications go out afterwards. A crash between the write and the
notifications loses those notifications (at most once) rather than sending them twice after the
restart, which rebuilds the open alerts from the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from alerting.engine import KeyState, Notification, Phase, step
from alerting.evaluate import Evaluator
from alerting.metrics import ALERT_STATE, EVALUATIONS, LAST_EVALUATION, TRANSITIONS
from alerting.notify import AlertHistory, Notifier
from alerting.rules import AlertRule

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class AlertRunner:
    def __init__(
        self,
        rules: tuple[AlertRule, ...],
        evaluator: Evaluator,
        history: AlertHistory,
        notifiers: Sequence[Notifier],
        interval_s: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.rules = rules
        self._evaluator, self._history, self._notifiers = evaluator, history, notifiers
        self._interval_s, self._clock = interval_s, clock
        self.states: dict[str, dict[str, KeyState]] = {r.name: {} for r in rules}
        self.last_evaluation: datetime | None = None
        self._exported: set[tuple[str, str]] = set()

    async def restore(self) -> None:
        """Rebuild open alerts and cooldowns from the ``alerts`` table (call once, before ``tick``)."""
        self.states = await asyncio.to_thread(self._history.open_states, self.rules)
        self._export()
        firing = sum(s.phase is Phase.FIRING for keys in self.states.values() for s in keys.values())
        log.info("alerts restored: %d firing", firing)

    async def tick(self, now: datetime | None = None) -> list[Notification]:
        """One evaluation at ``now`` (the clock by default). Returns the transitions sent; on a
        ClickHouse error it logs, counts and returns nothing, keeping the previous states."""
        now = now or self._clock()
        try:
            samples = await asyncio.to_thread(self._evaluator.measure, self.rules, now)
            states: dict[str, dict[str, KeyState]] = {}
            notes: list[Notification] = []
            for rule in self.rules:
                states[rule.name], out = step(rule, self.states.get(rule.name, {}), samples[rule.name], now)
                notes.extend(out)
            await asyncio.to_thread(self._history.record, notes)
        except Exception:
            EVALUATIONS.labels("failed").inc()
            log.exception("alert evaluation failed; retrying at the next interval")
            return []
        EVALUATIONS.labels("ok").inc()
        self.states, self.last_evaluation = states, now
        LAST_EVALUATION.set(now.timestamp())
        self._export()
        for note in notes:
            TRANSITIONS.labels(note.rule, note.state).inc()
            log.warning("alert %s: %s %s=%s %s", note.state, note.rule, note.dimension, note.key, note.reason)
            for notifier in self._notifiers:
                await notifier.send(note)
        return notes

    async def run(self, stop: asyncio.Event) -> None:
        """Evaluate every ``interval_s`` until ``stop`` is set (a SIGTERM ends the wait at once)."""
        await self.restore()
        while not stop.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)

    def _export(self) -> None:
        """The state gauge shows the keys the engine tracks; keys back to a plain OK leave it."""
        for rule, keys in self.states.items():
            for key, state in keys.items():
                ALERT_STATE.labels(rule, key).set(state.phase.value)
        tracked = {(rule, key) for rule, keys in self.states.items() for key in keys}
        for labels in list(self._exported - tracked):
            with contextlib.suppress(KeyError):
                ALERT_STATE.remove(*labels)
        self._exported = tracked
