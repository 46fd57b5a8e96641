"""The alert loop: every interval, measure every rule, advance the state machine, record, then notify.

Order per evaluation: transitions are written to the ``alerts`` table first and the new states kept
only after that write succeeded (a restart rebuilds the open alerts from the table). Their
notifications are then queued in the outbox (``alerting.outbox``) for every channel, and everything
pending is sent: the channels concurrently, each under ``deadline_s``, so a slow webhook holds the
evaluation no longer than that; one channel's notifications in transition order, and a key's later
transition waits while an earlier one failed. What failed or was not reached is retried at the next
evaluation, until it is delivered or older than ``expiry_s`` (then recorded as expired).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from alerting.evaluate import Evaluator
from alerting.metrics import ALERT_STATE, EVALUATIONS, LAST_EVALUATION, NOTIFICATIONS, TRANSITIONS
from alerting.notify import AlertHistory, Notifier
from alerting.outbox import Delivery, Outbox, Step
from alerting.state_machine import KeyState, Notification, Phase, step
from schemas.alert_rules import AlertRule

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
        outbox: Outbox | None = None,
        deadline_s: float = 10.0,
        expiry_s: float = 3600.0,
    ) -> None:
        self.rules = rules
        self._evaluator, self._history, self._notifiers = evaluator, history, notifiers
        self._interval_s, self._clock = interval_s, clock
        self._outbox, self._deadline_s, self._expiry = outbox, deadline_s, timedelta(seconds=expiry_s)
        self.states: dict[str, dict[str, KeyState]] = {r.name: {} for r in rules}
        self.last_evaluation: datetime | None = None
        self._exported: set[tuple[str, str]] = set()
        # Deliveries the outbox could not take (ClickHouse failing): kept here and queued next time.
        self._unqueued: list[Delivery] = []

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
        await self.deliver(notes, now)
        return notes

    async def deliver(self, notes: Sequence[Notification], now: datetime) -> list[Step]:
        """Queue ``notes`` for every channel, then send everything pending (see the module doc).
        Returns what happened to each delivery tried or given up."""
        fresh = self._unqueued + [Delivery(n, channel.channel) for n in notes for channel in self._notifiers]
        durable = self._outbox is not None
        due = fresh
        if self._outbox is not None:
            try:
                await asyncio.to_thread(self._outbox.queue, fresh, now)
                due = await asyncio.to_thread(self._outbox.pending)
            except Exception:
                log.exception("alert outbox unavailable: sending without it, queued again next time")
                durable = False
        steps = [self._expire(d) for d in due if now - d.note.at > self._expiry]
        live = [d for d in due if now - d.note.at <= self._expiry]
        sent = await asyncio.gather(
            *(self._send(n, [d for d in live if d.channel == n.channel]) for n in self._notifiers)
        )
        steps += [step for channel in sent for step in channel]
        if durable and self._outbox is not None:
            self._unqueued = []
            try:
                await asyncio.to_thread(self._outbox.record, steps, now)
            except Exception:  # still pending in the table: tried again (at least once, not lost)
                log.exception("alert outbox: outcomes not recorded; pending deliveries are sent again")
        else:
            done = {id(s.delivery) for s in steps if s.outcome in ("delivered", "expired")}
            attempts = {id(s.delivery): s.attempt for s in steps}
            self._unqueued = [
                Delivery(d.note, d.channel, attempts.get(id(d), d.attempts))
                for d in live
                if id(d) not in done
            ]
        return steps

    def _expire(self, delivery: Delivery) -> Step:
        note = delivery.note
        NOTIFICATIONS.labels(delivery.channel, "expired").inc()
        log.error(
            "alert notification given up after %d attempts (older than %s): %s %s %s=%s at %s via %s",
            delivery.attempts, self._expiry, note.state, note.rule, note.dimension, note.key,
            note.at.isoformat(), delivery.channel,
        )  # fmt: skip
        reason = f"not delivered within {self._expiry} ({delivery.attempts} attempts)"
        return Step(delivery, "expired", reason)

    async def _send(self, notifier: Notifier, deliveries: Sequence[Delivery]) -> list[Step]:
        """One channel's deliveries in order, all under one deadline; a key whose transition failed
        sends none of its later ones (they would arrive out of order)."""
        steps: list[Step] = []
        blocked: set[tuple[str, str]] = set()
        current: Delivery | None = None
        try:
            async with asyncio.timeout(self._deadline_s):
                for delivery in deliveries:
                    alert = (delivery.note.rule, delivery.note.key)
                    if alert in blocked:
                        continue
                    current = delivery
                    ok = await notifier.send(delivery.note)
                    current = None
                    if ok:
                        steps.append(Step(delivery, "delivered"))
                    else:
                        steps.append(Step(delivery, "failed", "send failed (see the log)"))
                        blocked.add(alert)
        except TimeoutError:
            NOTIFICATIONS.labels(notifier.channel, "timeout").inc()
            log.error("alert %s sends stopped at the %ss deadline", notifier.channel, self._deadline_s)
            if current is not None:
                steps.append(Step(current, "failed", f"no answer within the {self._deadline_s}s deadline"))
        return steps

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
