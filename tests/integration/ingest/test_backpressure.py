"""Kafka unreachable: 503 with Retry-After within the publish timeout, never a 2xx for an event Kafka
did not acknowledge, and recovery without restarting ingest. Real Tansu, no mocks: the broker
advertises a proxy that the test cuts and restores (restarting Tansu would lose its topics)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from adapters.publisher import encode
from ingest.responses import RETRY_AFTER_S
from mailpulse.broker import EmbeddedBroker
from mailpulse.settings import Settings
from schemas.sendgrid import parse_sendgrid_event
from tests.integration.ingest.ingest_app import ingest_client
from tests.integration.ingest.proxy import CuttableProxy, broker_behind_proxy
from tests.integration.pipeline import read_topic
from tests.webhook_events import sendgrid_event

pytestmark = [pytest.mark.kafka]

PUBLISH_TIMEOUT_S = 1.0
SLACK_S = 1.0


def test_unreachable_kafka_gives_503_and_no_acknowledged_event_is_lost(
    settings: Settings, tmp_path: Path
) -> None:
    acknowledged: list[str] = []
    outcomes: dict[str, list[int]] = {"before": [], "cut": [], "recovering": [], "after": []}

    async def post(client: httpx.AsyncClient, n: int, phase: str) -> httpx.Response:
        batch = [sendgrid_event("delivered", n, n * 10 + i, email=f"user{n}@example.com") for i in range(3)]
        started = time.monotonic()
        answer = await client.post("/webhooks/sendgrid/events", json=batch)
        elapsed = time.monotonic() - started
        outcomes[phase].append(answer.status_code)
        if answer.is_success:
            acknowledged.extend(e["sg_event_id"] for e in batch)
        else:
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"].isdigit() and answer.json()["error"]
            assert elapsed < PUBLISH_TIMEOUT_S + SLACK_S, f"503 took {elapsed:.2f}s"
        return answer

    async def scenario(broker: EmbeddedBroker, proxy: CuttableProxy) -> list[str]:
        via_proxy = settings.model_copy(
            update={"kafka_bootstrap": f"127.0.0.1:{proxy.port}", "publish_timeout_s": PUBLISH_TIMEOUT_S}
        )
        async with ingest_client(via_proxy) as client:
            for n in range(5):
                assert (await post(client, n, "before")).status_code == 200
            await proxy.cut()
            # Concurrent requests while Kafka is unreachable: each gets 503 within the timeout.
            await asyncio.gather(*(post(client, n, "cut") for n in range(5, 15)))
            await asyncio.sleep(0.5)
            await post(client, 15, "cut")
            await proxy.restore()
            n, deadline = 16, time.monotonic() + 30
            while (await post(client, n, "recovering")).status_code != 200:  # the same app, no restart
                assert time.monotonic() < deadline, "ingest did not recover within 30 s"
                n += 1
            for after in range(n + 1, n + 6):
                assert (await post(client, after, "after")).status_code == 200
        records = await read_topic(broker.bootstrap, settings.status_topic, len(acknowledged), 15.0)
        return [orjson.loads(r.value)["event_id"] for r in records]

    async def run() -> list[str]:
        async with broker_behind_proxy(tmp_path / "tansu.log") as (broker, proxy):
            return await scenario(broker, proxy)

    in_topic = asyncio.run(run())
    print(f"\noutcomes: {outcomes}")
    assert outcomes["cut"] == [503] * 11  # never a 2xx while Kafka could not acknowledge
    assert len(outcomes["before"]) == 5 and len(outcomes["after"]) == 5
    missing = set(acknowledged) - set(in_topic)
    assert not missing, f"acknowledged but not in Kafka: {sorted(missing)}"


# 3 events are sent one by one, 10 go through the batcher's shared batches: both paths are counted.
@pytest.mark.parametrize("events", [3, 10])
def test_bytes_awaiting_kafka_are_capped_and_readyz_fails_while_acks_stall(
    settings: Settings, tmp_path: Path, events: int
) -> None:
    """Kafka stops acknowledging (the proxy holds every byte): the request whose records the producer
    holds gets 503 at its timeout, /readyz then fails naming the stall, and a request that would pass
    the cap of queued bytes gets 503 with Retry-After without publishing anything. Once Kafka answers
    again, /readyz recovers with no new traffic needed."""

    def batch(n: int) -> list[dict[str, Any]]:
        return [
            sendgrid_event("delivered", n, n * 100 + i, email=f"user{n}.{i}@example.com")
            for i in range(events)
        ]

    received = datetime.now(UTC)
    one_batch = sum(
        len(e.message_id.encode()) + len(encode(e))
        for e in (parse_sendgrid_event(raw, received) for raw in batch(0))
    )
    cap = one_batch * 3 // 2  # one batch fits, two do not

    async def ready(client: httpx.AsyncClient) -> tuple[int, list[str]]:
        answer = await client.get("/readyz")
        return answer.status_code, answer.json().get("problems", [])

    async def until_ready(client: httpx.AsyncClient, want: int) -> tuple[int, list[str]]:
        for _ in range(100):  # bounded wait for the condition, not for a time
            status, problems = await ready(client)
            if status == want:
                break
            await asyncio.sleep(0.2)
        return status, problems

    async def scenario(broker: EmbeddedBroker, proxy: CuttableProxy) -> dict[str, Any]:
        via_proxy = settings.model_copy(
            update={
                "kafka_bootstrap": f"127.0.0.1:{proxy.port}",
                "publish_timeout_s": PUBLISH_TIMEOUT_S,
                "ingest_max_queued_bytes": cap,
            }
        )
        seen: dict[str, Any] = {}
        async with ingest_client(via_proxy) as client:
            seen["before"] = (await client.post("/webhooks/sendgrid/events", json=batch(0))).status_code
            seen["ready before"] = await ready(client)
            proxy.pause()
            stalled = await client.post("/webhooks/sendgrid/events", json=batch(1))
            seen["stalled"] = stalled.status_code, stalled.headers.get("retry-after")
            seen["ready stalled"] = await until_ready(client, 503)
            refused = await client.post("/webhooks/sendgrid/events", json=batch(2))
            seen["refused"] = refused.status_code, refused.headers.get("retry-after"), refused.json()
            seen["ready refused"] = await ready(client)
            proxy.resume()
            seen["ready after"] = await until_ready(client, 200)
            seen["after"] = (await client.post("/webhooks/sendgrid/events", json=batch(3))).status_code
        records = await read_topic(broker.bootstrap, settings.status_topic, 3 * events, 10.0)
        seen["in topic"] = {orjson.loads(r.value)["event_id"] for r in records}
        return seen

    async def run() -> dict[str, Any]:
        async with broker_behind_proxy(tmp_path / "tansu.log") as (broker, proxy):
            return await scenario(broker, proxy)

    seen = asyncio.run(run())
    assert seen["before"] == 200 and seen["ready before"] == (200, [])
    assert seen["stalled"] == (503, RETRY_AFTER_S)
    status, problems = seen["ready stalled"]
    assert status == 503 and any("acknowledgements stall" in p for p in problems), problems
    status, retry_after, body = seen["refused"]
    assert (status, retry_after) == (503, RETRY_AFTER_S)
    assert f"the cap of {cap}" in body["error"], body
    status, problems = seen["ready refused"]
    assert status == 503 and any(f"at the cap of {cap}" in p for p in problems), problems
    assert seen["ready after"] == (200, [])
    assert seen["after"] == 200
    ids = seen["in topic"]
    assert {e["sg_event_id"] for e in batch(0) + batch(3)} <= ids
    assert not {e["sg_event_id"] for e in batch(2)} & ids  # the refused request published nothing
