"""Kafka unreachable: 503 with Retry-After within the publish timeout, never a 2xx for an event Kafka
did not acknowledge, and recovery without restarting ingest. Real Tansu, no mocks: the broker
advertises a proxy that the test cuts and restores (restarting Tansu would lose its topics)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import orjson
import pytest

from mailpulse.broker import EmbeddedBroker, free_port
from mailpulse.settings import Settings
from tests.ingest.conftest import ingest_client
from tests.ingest.proxy import CuttableProxy
from tests.integration.pipeline import read_topic
from tests.integration.test_slice import sendgrid_event

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
        return [orjson.loads(r.value)["event"]["event_id"] for r in records]

    async def run() -> list[str]:
        proxy_port = free_port()
        with EmbeddedBroker(advertised_port=proxy_port, log_path=tmp_path / "tansu.log") as broker:
            proxy = await CuttableProxy(proxy_port, broker.port).start()
            try:
                return await scenario(broker, proxy)
            finally:
                await proxy.cut()

    in_topic = asyncio.run(run())
    print(f"\noutcomes: {outcomes}")
    assert outcomes["cut"] == [503] * 11  # never a 2xx while Kafka could not acknowledge
    assert len(outcomes["before"]) == 5 and len(outcomes["after"]) == 5
    missing = set(acknowledged) - set(in_topic)
    assert not missing, f"acknowledged but not in Kafka: {sorted(missing)}"
