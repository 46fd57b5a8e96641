"""Notifiers against real endpoints: a local HTTP receiver, the Tansu broker, the alerts table on chDB."""

from __future__ import annotations

import asyncio
import random
import re

import httpx
import pytest
from pydantic import ValidationError

from adapters.retry import Backoff
from alerting.notify import WebhookNotifier, slack_message
from alerting.state_machine import Notification
from mailpulse.broker import free_port
from mailpulse.settings import Settings
from tests.alerting.notifications import FIRING, sent
from tests.integration.alerting.receiver import webhook_receiver


def test_slack_message_carries_every_field() -> None:
    message = slack_message(FIRING)
    assert message["text"] == (
        "[FIRING] fail: failure_rate 42.00% (threshold 20.00%) for sender_domain=shop.example over 300s, "
        "120 outcomes: failure_rate above 0.2 for 60s"
    )
    [attachment] = message["attachments"]
    assert attachment["color"] == "danger"
    assert {f["title"]: f["value"] for f in attachment["fields"]} == {
        "rule": "fail", "state": "firing", "key": "sender_domain=shop.example", "value": "42.00%",
        "threshold": "20.00%", "volume": "120",
    }  # fmt: skip
    assert message["alert"]["at"] == "2026-11-23T12:05:00.123000Z"
    assert message["alert"]["value"] == 0.42 and message["alert"]["state"] == "firing"


def test_slack_text_escapes_keys_so_they_cannot_mention_or_link() -> None:
    key = "<!channel> & <https://evil.example|click>"
    message = slack_message(Notification(**{**FIRING.__dict__, "key": key, "rule": "r<1>"}))
    shown = "sender_domain=&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"
    assert shown in message["text"] and "r&lt;1&gt;:" in message["text"]
    [attachment] = message["attachments"]
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields["key"] == shown and fields["rule"] == "r&lt;1&gt;"
    for text in (message["text"], attachment["fallback"], *fields.values()):
        assert "<" not in text and ">" not in text
    assert message["alert"]["key"] == key, "machines get the key as it is"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://hooks.example/x", "http(s)"),
        ("https:///services/T0/B0/secret", "no host"),
        ("http://hooks.example:99999/secret", "does not parse"),
        ("http://[::1/secret", "does not parse"),
        ("https://hooks.example/services/a secret", "whitespace"),
    ],
)
def test_a_bad_webhook_url_is_refused_at_start_without_showing_it(url: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)) as caught:
        Settings(alerts_webhook_url=url)
    assert "secret" not in str(caught.value)
    with pytest.raises(ValueError, match=re.escape(problem)) as refused:
        WebhookNotifier(httpx.AsyncClient(), url, Backoff())
    assert "secret" not in str(refused.value)


async def deliver(statuses: list[int], attempts: int = 4) -> tuple[bool, int, int, list[float]]:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:  # records the backoff instead of waiting it out
        delays.append(seconds)

    async with webhook_receiver(statuses) as receiver, httpx.AsyncClient(timeout=5) as client:
        notifier = WebhookNotifier(
            client, receiver.url, Backoff(0.5, 30.0, attempts), sleep, random.Random(1)
        )
        ok = await notifier.send(FIRING)
        return ok, len(receiver.received), len(receiver.accepted), delays


def test_webhook_retries_5xx_and_429_then_delivers_once() -> None:
    before = (sent("webhook", "sent"), sent("webhook", "retried"))
    ok, received, accepted, delays = asyncio.run(deliver([503, 429, 500]))
    assert (ok, received, accepted) == (True, 4, 1)
    assert len(delays) == 3 and all(1.0 <= d <= 1.5 for d in delays)  # Retry-After: 1 is a floor
    assert (sent("webhook", "sent"), sent("webhook", "retried")) == (before[0] + 1, before[1] + 3)


def test_webhook_gives_up_after_the_attempts_and_on_4xx_without_raising() -> None:
    failed = sent("webhook", "failed")
    assert asyncio.run(deliver([500] * 10, attempts=3))[:3] == (False, 3, 0)
    assert asyncio.run(deliver([400, 400]))[:3] == (False, 1, 0)  # a client error is not retried
    assert sent("webhook", "failed") == failed + 2


def test_unreachable_webhook_is_counted_not_raised() -> None:
    async def scenario() -> bool:
        async with httpx.AsyncClient(timeout=2) as client:
            url = f"http://127.0.0.1:{free_port()}/nobody"
            notifier = WebhookNotifier(client, url, Backoff(0.01, 0.02, 2), _nap)
            return await notifier.send(FIRING)

    failed = sent("webhook", "failed")
    assert asyncio.run(scenario()) is False
    assert sent("webhook", "failed") == failed + 1


async def _nap(seconds: float) -> None:
    await asyncio.sleep(0)
