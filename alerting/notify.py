"""Where transitions go: the ``alerts`` table (first), then a webhook (Slack-compatible) and a Kafka topic.

A notifier never raises: a failure is logged and counted, and the evaluation loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from adapters.clickhouse import ClickHouseStore
from adapters.retry import Backoff, parse_retry_after, retriable
from alerting.metrics import NOTIFICATIONS
from alerting.state_machine import KeyState, Notification, restored
from alerting.urls import webhook_url_problem
from schemas.alert_rules import AlertRule

log = logging.getLogger(__name__)

ALERT_COLUMNS = (
    "at",
    "rule",
    "metric",
    "dimension",
    "key",
    "state",
    "value",
    "threshold",
    "volume",
    "window_s",
)


class Notifier(Protocol):
    channel: str

    async def send(self, note: Notification) -> bool:
        """Deliver ``note``; False when it could not (already logged and counted)."""
        ...


def payload(note: Notification) -> dict[str, Any]:
    """The JSON of a transition: machine-readable fields, as on the Kafka topic."""
    return {
        "at": note.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "rule": note.rule,
        "metric": note.metric,
        "dimension": note.dimension,
        "key": note.key,
        "state": note.state,
        "value": note.value,
        "threshold": note.threshold,
        "volume": note.volume,
        "window_s": note.window_s,
        "reason": note.reason,
    }


def slack_escape(text: str) -> str:
    """Slack mrkdwn control characters as entities: a key such as ``<!channel>`` or ``<https://x|y>``
    (domains and tags come from mail) is shown as typed, never as a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(note: Notification) -> dict[str, Any]:
    """Slack-compatible (``text`` + ``attachments`` fields, escaped for mrkdwn); ``alert`` repeats the
    fields for machines, unescaped."""
    where = f"{note.dimension}={note.key}" if note.dimension else "all mail"
    value = "n/a" if note.value is None else f"{note.value:.2%}"
    text = slack_escape(
        f"[{note.state.upper()}] {note.rule}: {note.metric} {value} (threshold {note.threshold:.2%}) "
        f"for {where} over {note.window_s}s, {note.volume} outcomes: {note.reason}"
    )
    fields = [
        ("rule", slack_escape(note.rule)), ("state", note.state), ("key", slack_escape(where)),
        ("value", value), ("threshold", f"{note.threshold:.2%}"), ("volume", str(note.volume)),
    ]  # fmt: skip
    return {
        "text": text,
        "attachments": [
            {
                "color": "danger" if note.state == "firing" else "good",
                "fallback": text,
                "fields": [{"title": t, "value": v, "short": True} for t, v in fields],
                "ts": int(note.at.timestamp()),
            }
        ],
        "alert": payload(note),
    }


class WebhookNotifier:
    """POSTs to one URL; retries 429, 5xx and network errors ``backoff.max_attempts`` times in all."""

    channel = "webhook"

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        backoff: Backoff,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        problem = webhook_url_problem(url)
        if problem:
            raise ValueError(f"alerts_webhook_url {problem}")
        self._client, self._url, self._backoff, self._sleep = client, url, backoff, sleep
        self._rng = rng or random.Random()

    async def send(self, note: Notification) -> bool:
        body = orjson.dumps(slack_message(note))
        problem = ""
        for attempt in range(1, self._backoff.max_attempts + 1):
            retry_after = None
            try:
                response = await self._client.post(
                    self._url, content=body, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    NOTIFICATIONS.labels(self.channel, "sent").inc()
                    return True
                problem = f"HTTP {response.status_code}"
                if not retriable(response.status_code):
                    break
                retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
            if attempt < self._backoff.max_attempts:
                NOTIFICATIONS.labels(self.channel, "retried").inc()
                delay = self._backoff.delay(attempt, retry_after, self._rng)
                await self._sleep(min(delay, self._backoff.cap_s))
        NOTIFICATIONS.labels(self.channel, "failed").inc()
        # The URL is a secret (Slack puts the token in it): never logged.
        log.error("alert webhook failed (%s) for %s %s %s", problem, note.rule, note.key, note.state)
        return False


class KafkaNotifier:
    """One record per transition on the alerts topic, keyed ``rule|key`` (one partition per alert)."""

    channel = "kafka"

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer, self._topic = producer, topic

    async def send(self, note: Notification) -> bool:
        try:
            await self._producer.send_and_wait(
                self._topic, key=f"{note.rule}|{note.key}".encode(), value=orjson.dumps(payload(note))
            )
        except Exception as exc:  # aiokafka raises several families; none may stop the loop
            NOTIFICATIONS.labels(self.channel, "failed").inc()
            log.error("alert not published to %s (%r) for %s %s", self._topic, exc, note.rule, note.key)
            return False
        NOTIFICATIONS.labels(self.channel, "sent").inc()
        return True


class AlertHistory:
    """The ``alerts`` table: every transition, and the open state rebuilt from it after a restart.
    Blocking (clickhouse-connect): call it from a thread when on an event loop."""

    def __init__(self, store: ClickHouseStore) -> None:
        self._store = store

    def record(self, notes: Iterable[Notification]) -> None:
        rows = [
            # An undefined rate (no outcomes left) is stored as 0 with volume 0.
            (n.at, n.rule, n.metric, n.dimension, n.key, n.state, n.value or 0.0, n.threshold, n.volume,
             n.window_s)
            for n in notes
        ]  # fmt: skip
        if rows:
            token = "|".join(f"{r[1]}/{r[4]}/{r[5]}/{r[0].isoformat()}" for r in rows)
            self._store.insert("alerts", ALERT_COLUMNS, rows, f"alerts|{token}")

    def open_states(self, rules: Iterable[AlertRule]) -> dict[str, dict[str, KeyState]]:
        """rule -> key -> state from each key's last recorded transition."""
        by_name = {r.name: r for r in rules}
        rows = self._store.query(
            f"SELECT rule, key, argMax(state, at), max(at) FROM {self._store.database}.alerts"
            " WHERE rule IN {rules:Array(String)} GROUP BY rule, key",
            {"rules": list(by_name)},
        )
        states: dict[str, dict[str, KeyState]] = {name: {} for name in by_name}
        for rule, key, state, at in rows:
            at = at if at.tzinfo else at.replace(tzinfo=UTC)  # chDB answers naive UTC
            states[rule][key] = restored(by_name[rule], state, at)
        return states
