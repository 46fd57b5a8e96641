"""Delivers planned webhook POSTs over HTTP (httpx), signed, retried as the providers retry."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
import orjson

from simulator.payloads import Signer, body
from simulator.webhooks import Batch, WebhookPolicy, WebhookTarget

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SendStats:
    posts: int = 0  # HTTP requests made, retries included
    delivered_events: int = 0  # events in POSTs answered 2xx
    accepted_events: int = 0  # of those, what the receiver said it accepted (ingest's "accepted")
    retries: int = 0
    given_up: int = 0  # events of POSTs abandoned after max_attempts
    discarded: int = 0  # events of POSTs answered 4xx other than 429 (not retried, as Event Streams)
    # email id -> statuses whose webhook reached the receiver: what webhooks alone can tell.
    delivered: dict[str, set[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {
            "posts": self.posts,
            "deliveredEvents": self.delivered_events,
            "acceptedEvents": self.accepted_events,
            "retries": self.retries,
            "givenUp": self.given_up,
            "discarded": self.discarded,
        }


class WebhookSender:
    def __init__(
        self,
        client: httpx.AsyncClient,
        targets: Sequence[WebhookTarget],
        policy: WebhookPolicy,
        signer: Signer,
        rng: random.Random,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.targets = tuple(targets)
        self.policy = policy
        self.signer = signer
        self.rng = rng
        self.wall = wall
        self.stats = SendStats()

    async def deliver(self, batch: Batch) -> None:
        """POST one batch until a 2xx, a non-retriable answer, or ``max_attempts`` attempts."""
        target = self.targets[batch.target]
        payload = body(target.format, batch.events)
        for attempt in range(1, self.policy.max_attempts + 1):
            url, headers = self.signer.sign(target.format, target.url, payload, self.wall())
            self.stats.posts += 1
            try:
                response = await self.client.post(
                    url, content=payload, headers=headers, timeout=self.policy.timeout_s
                )
                status = response.status_code
            except httpx.HTTPError as exc:
                log.debug("webhook to %s failed: %r", target.url, exc)
                status, response = 0, None
            if 200 <= status < 300 and response is not None:
                self._delivered(batch, response)
                return
            if status and not self.policy.retriable(status):
                log.warning("webhook to %s answered %s: discarded", target.url, status)
                self.stats.discarded += len(batch.events)
                return
            if attempt == self.policy.max_attempts:
                self.stats.given_up += len(batch.events)
                return
            self.stats.retries += 1
            await asyncio.sleep(self.policy.retry_delay(attempt, self.rng))

    def _delivered(self, batch: Batch, response: httpx.Response) -> None:
        self.stats.delivered_events += len(batch.events)
        accepted = len(batch.events)
        try:
            answer = orjson.loads(response.content)
            if isinstance(answer, dict) and isinstance(answer.get("accepted"), int):
                accepted = answer["accepted"]
        except orjson.JSONDecodeError:
            pass
        self.stats.accepted_events += accepted
        for subject in batch.subjects:
            if subject is not None:
                self.stats.delivered.setdefault(subject.email_id, set()).add(subject.status)
