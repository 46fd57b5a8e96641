"""SIGTERM under load: ingest stops accepting, finishes in-flight requests, and loses nothing it acked."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from mailpulse.broker import free_port
from mailpulse.runtime import wait_listening
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from tests.integration.pipeline import read_topic
from tests.webhook_events import sendgrid_event

pytestmark = [pytest.mark.kafka]


def test_sigterm_under_load_loses_no_acknowledged_event(settings: Settings, tmp_path: Path) -> None:
    assert settings.kafka_bootstrap is not None
    bootstrap = settings.kafka_bootstrap
    port = free_port()
    env = {
        **os.environ,
        "MAILPULSE_KAFKA_BOOTSTRAP": bootstrap,
        "MAILPULSE_STATUS_TOPIC": settings.status_topic,
        "MAILPULSE_DEADLETTER_TOPIC": settings.deadletter_topic,
        "MAILPULSE_PARTITIONS": str(settings.partitions),
        "MAILPULSE_DATA_DIR": str(tmp_path),
        "MAILPULSE_ALLOW_UNSIGNED": "true",  # the load posts unsigned events
    }
    acked: list[str] = []
    refused = 0
    under_load = asyncio.Event()

    async def client_loop(client: httpx.AsyncClient, worker: int) -> None:
        nonlocal refused
        for n in range(400):  # bounded: stops by itself
            batch = [sendgrid_event("delivered", 30, worker * 100_000 + n * 10 + i) for i in range(10)]
            for i, event in enumerate(batch):
                event["sg_message_id"] = f"W{worker}N{n}I{i}.filter0.0"
            try:
                response = await client.post("/webhooks/sendgrid/events", json=batch)
            except httpx.TransportError:
                refused += 1
                return
            if response.status_code == 200:
                acked.extend(e["sg_event_id"] for e in batch)
                if len(acked) >= 500:
                    under_load.set()

    async def scenario() -> int:
        await ensure_topics(bootstrap, settings.topics, settings.partitions)
        log = (tmp_path / "ingest.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mailpulse.cli",
            "ingest",
            "--port",
            str(port),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            await wait_listening("127.0.0.1", port, timeout_s=30)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                load = [asyncio.create_task(client_loop(client, w)) for w in range(4)]
                await asyncio.wait_for(under_load.wait(), timeout=60)
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(asyncio.gather(*load), timeout=60)
            return await asyncio.wait_for(proc.wait(), timeout=30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            log.close()

    code = asyncio.run(scenario())
    assert code == 0, (tmp_path / "ingest.log").read_text()[-2000:]
    assert refused > 0  # it stopped accepting before the load ended
    records = asyncio.run(read_topic(bootstrap, settings.status_topic, len(acked), timeout_s=30))
    in_kafka = {orjson.loads(r.value)["event_id"] for r in records}
    assert set(acked) <= in_kafka, f"{len(set(acked) - in_kafka)} acknowledged events missing"
