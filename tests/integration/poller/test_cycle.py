"""The poller over real HTTP against the simulator (API clock moved by hand), publishing to the real
broker: pagination end to end, 429 handling, restart from the checkpoint, operations followed to the
end, reconciliation of stuck messages, the retention warning. Records are counted on the topic."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from prometheus_client import REGISTRY

from mailpulse.runtime import poller
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from poller.cycle import Poller
from simulator.clock import ManualSource
from simulator.lifecycle import Outcomes
from simulator.paging import ListOrder
from simulator.server import SimulatorConfig, SimulatorServer
from tests.simulator.send_requests import valid

pytestmark = pytest.mark.kafka
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
NO_REPLIES = Outcomes(inbound=0.0)
MARKER = b"__count-marker__"


@dataclass
class Rig:
    sim: SimulatorServer
    source: ManualSource
    settings: Settings
    client: httpx.AsyncClient
    wall: list[float] = field(default_factory=lambda: [1_000_000.0])

    @contextlib.asynccontextmanager
    async def poller(self, **overrides: Any) -> AsyncIterator[Poller]:
        settings = self.settings.model_copy(update={"email_api_base_url": self.sim.base_url, **overrides})
        assert settings.kafka_bootstrap is not None
        async with poller(settings, settings.kafka_bootstrap, clock=lambda: self.wall[0]) as running:
            yield running

    async def send(self, recipients: int, **changes: Any) -> str:
        to = [{"address": f"r{n}.{self.sim.simulator.rng.random()}@example.com"} for n in range(recipients)]
        body = valid(to=to, content={"subject": "Hi", "html": "<p>Hello</p>"}, **changes)
        response = await self.client.post("/v1/Emails", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["operationId"])

    async def records(self, topic: str | None = None) -> int:
        return len(await self.read(topic))

    async def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(r.value) for r in await self.read()]

    async def read(self, topic: str | None = None) -> list[ConsumerRecord]:
        assert self.settings.kafka_bootstrap is not None
        return await everything_on(self.settings.kafka_bootstrap, topic or self.settings.status_topic)


async def everything_on(bootstrap: str, topic: str, timeout_s: float = 15.0) -> list[ConsumerRecord]:
    """Every record of ``topic``, exactly: a marker is written to each partition and the topic is read
    until every marker came back. (Tansu's end offsets count batches, not records, so they cannot say.)"""
    marker = f"marker-{uuid.uuid4().hex}".encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        partitions = await producer.partitions_for(topic)
        await asyncio.gather(
            *[await producer.send(topic, marker, key=MARKER, partition=p) for p in partitions]
        )
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[ConsumerRecord] = []
    seen: set[int] = set()
    try:
        async with asyncio.timeout(timeout_s):
            while seen != partitions:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    for record in batch:
                        if record.key != MARKER:
                            found.append(record)
                        elif record.value == marker:
                            seen.add(record.partition)
    finally:
        await consumer.stop()
    return found


def run(settings: Settings, scenario: Callable[[Rig], Awaitable[None]], **config: Any) -> None:
    async def main() -> None:
        assert settings.kafka_bootstrap is not None
        await ensure_topics(settings.kafka_bootstrap, settings.topics, settings.partitions)
        source = ManualSource()
        sim_config = SimulatorConfig(start=T0, source=source, **{"outcomes": NO_REPLIES, **config})
        async with SimulatorServer(sim_config) as sim, httpx.AsyncClient(base_url=sim.base_url) as client:
            await scenario(Rig(sim, source, settings, client))

    asyncio.run(asyncio.wait_for(main(), 90))


def test_pagination_end_to_end_publishes_every_email_once(settings: Settings, tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> None:
        for n in (1000, 1000, 600):
            await rig.send(n)
        emails = set(rig.sim.simulator.emails)
        assert len(emails) == 2600
        for page_size, topic in ((1000, rig.settings.status_topic), (50, rig.settings.deadletter_topic)):
            # The second poller has its own checkpoint and topic: it reads everything again, by 50.
            async with rig.poller(poll_page_size=page_size, status_topic=topic,
                                  poll_checkpoint=tmp_path / f"{page_size}.sqlite3") as poll:  # fmt: skip
                assert await poll.cycle_safely()
                assert poll.stats.published == 2600 + 3
                assert poll.stats.requests >= 2600 // page_size
            assert await rig.records(topic) == 2603
        published = await rig.events()
        ids = Counter(e["message_id"] for e in published if e["kind"] == "status")
        assert set(ids) == emails and set(ids.values()) == {1}, "no duplicates, no gaps"
        assert all(e["source"] == "poller" and e["provider"] == "twilio" for e in published)

    run(settings, scenario)


def test_429_is_waited_out_honouring_retry_after_and_retries_are_bounded(settings: Settings) -> None:
    async def scenario(rig: Rig) -> None:
        await rig.send(300)
        async with rig.poller(poll_page_size=20, poll_rate_per_s=100.0, poll_concurrency=4) as poll:
            assert await poll.cycle_safely()
            assert poll.stats.throttled > 0, "the simulator's limit was hit"
            throttled_waits = poll.stats.retry_waits
            assert throttled_waits and min(throttled_waits) >= 1.0, "never earlier than Retry-After: 1"
            assert poll.stats.published == 301
        assert await rig.records() == 301

    run(settings, scenario, rate_limit=4.0, rate_burst=4.0)


def test_a_failing_api_ends_the_cycle_after_max_attempts(settings: Settings) -> None:
    async def scenario(rig: Rig) -> None:
        async with rig.poller(poll_max_attempts=3, poll_backoff_base_s=0.01) as poll:
            assert not await poll.cycle_safely()
            assert (poll.stats.requests, poll.stats.backoffs, poll.stats.failed_cycles) == (3, 2, 1)
        assert await rig.records() == 0

    run(settings, scenario, error_rate=1.0)


def test_a_restart_resumes_from_the_checkpoint_without_republishing(settings: Settings) -> None:
    async def scenario(rig: Rig) -> None:
        await rig.send(300)
        async with rig.poller() as first:
            assert await first.cycle_safely()
        published = await rig.records()
        assert published == 301
        async with rig.poller() as second:  # a new process: only the checkpoint file is shared
            assert await second.cycle_safely()
            assert second.stats.published == 0
            assert await rig.records() == published
            rig.source.advance(30)  # every email left QUEUED, the operation completed
            now = rig.sim.clock.now()
            changed = sum(1 for t in rig.sim.simulator.truth(now) if t.status.value != "QUEUED")
            assert await second.cycle_safely()
            assert second.stats.published == changed + 1  # and the operation's COMPLETED
        assert await rig.records() == published + changed + 1

    run(settings, scenario)


@pytest.mark.parametrize("order", list(ListOrder))
def test_the_checkpoint_holds_whatever_order_the_api_lists_in(settings: Settings, order: ListOrder) -> None:
    """A listing that fails half-way, then succeeds, then lists newer mail: nothing is missed and
    nothing published twice, oldest first, newest first or shuffled."""

    async def scenario(rig: Rig) -> None:
        for _ in range(3):  # three creation times, so the order matters
            await rig.send(100)
            rig.source.advance(1)
        lists = 0

        async def fail_the_fourth_list(request: httpx.Request) -> None:
            nonlocal lists
            if request.method == "GET" and request.url.path == "/v1/Emails":
                lists += 1
                if lists == 4:
                    raise httpx.ConnectError("the listing breaks after three pages", request=request)

        async with rig.poller(poll_page_size=50, poll_max_attempts=1) as poll:
            poll.client.event_hooks["request"].append(fail_the_fourth_list)
            assert not await poll.cycle_safely()
            assert 0 < poll.stats.published < 300, "some pages were published before the failure"
            poll.client.event_hooks["request"].remove(fail_the_fourth_list)
            assert await poll.cycle_safely()
            await rig.send(100)  # newer mail, listed by the next cycle from the mark
            assert await poll.cycle_safely()
        truth = {t.id: t.status.value for t in rig.sim.simulator.truth(rig.sim.clock.now())}
        assert len(truth) == 400
        statuses = [e for e in await rig.events() if e["kind"] == "status"]
        assert {e["message_id"] for e in statuses} == set(truth), "no email missed"
        keys = Counter((e["message_id"], e["status"], e["occurred_at"]) for e in statuses)
        assert set(keys.values()) == {1}, "none published twice"
        latest = {e["message_id"]: e["status"] for e in sorted(statuses, key=lambda e: e["occurred_at"])}
        assert latest == truth

    run(settings, scenario, list_order=order)


def test_operations_are_followed_until_terminal(settings: Settings) -> None:
    async def scenario(rig: Rig) -> None:
        send_at = (T0 + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        operation = await rig.send(20, schedule={"sendAt": [send_at]})
        async with rig.poller() as poll:
            for advance in (0.0, 3600.1, 30.0):
                rig.source.advance(advance)
                assert await poll.cycle_safely()
            assert poll.checkpoint.open_operations() == []
            requests = poll.stats.requests
            assert await poll.cycle_safely()
            assert poll.stats.requests == requests + 2, "a terminal operation is not fetched again"
        mine = [e for e in await rig.events() if e["message_id"] == operation]
        assert [e["raw_type"].rsplit(".", 1)[1] for e in mine] == ["scheduled", "processing", "completed"]
        emails = Counter(e["status"] for e in await rig.events() if e["kind"] == "status")
        assert emails["SCHEDULED"] == 20 and emails["QUEUED"] == 20 - emails["CANCELED"]

    run(settings, scenario, outcomes=Outcomes(canceled=0.0, inbound=0.0))


# Every email is sent, then stays SENT for an hour before it is delivered.
STUCK = Outcomes(
    failed=0.0,
    undelivered=0.0,
    slow=1.0,
    slow_send_s=(3600.0, 3601.0),
    opened=0.0,
    async_bounce=0.0,
    inbound=0.0,
)


def test_reconciliation_re_polls_stuck_messages_after_reconcile_after(settings: Settings) -> None:
    async def scenario(rig: Rig) -> None:
        stuck = await rig.send(40)
        async with rig.poller(poll_reconcile_after_s=60.0) as poll:
            rig.source.advance(10)  # SENT, and SENT they stay for an hour
            assert await poll.cycle_safely()
            rig.source.advance(1)
            await rig.send(1)  # newer mail moves the high-water mark past the stuck ones
            assert await poll.cycle_safely()
            rig.source.advance(2 * 3600)  # delivered now; no webhook, nothing lists them as new
            rig.wall[0] += 30  # before reconcile_after: not looked at again
            assert await poll.cycle_safely()
            delivered = [e for e in await rig.events() if e["status"] == "DELIVERED"]
            assert not [e for e in delivered if e["operation_id"] == stuck]
            rig.wall[0] += 31
            assert await poll.cycle_safely()
            assert poll.stats.reconciled >= 40
        delivered = [
            e for e in await rig.events() if e["status"] == "DELIVERED" and e["operation_id"] == stuck
        ]
        assert len(delivered) == 40
        assert {e["occurred_at"] for e in delivered} == {
            t.since.isoformat().replace("+00:00", "Z")
            for t in rig.sim.simulator.truth(rig.sim.clock.now())
            if t.operation_id == stuck
        }

    run(settings, scenario, outcomes=STUCK)


def test_the_poller_warns_before_it_falls_behind_the_retention(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    def warnings(level: str) -> float:
        return REGISTRY.get_sample_value("mailpulse_poller_retention_warnings_total", {"level": level}) or 0.0

    async def scenario(rig: Rig) -> None:
        await rig.send(5)
        before = warnings("warn"), warnings("lost")
        async with rig.poller() as poll:
            assert await poll.cycle_safely()
            rig.source.advance(6.5 * 86_400)
            with caplog.at_level(logging.WARNING, logger="poller.cycle"):
                assert await poll.cycle_safely()
            assert "behind the Email API" in caplog.text
            assert warnings("warn") == before[0] + 1
            rig.source.advance(86_400)
            assert await poll.cycle_safely()
            assert warnings("lost") == before[1] + 1
            lag = REGISTRY.get_sample_value("mailpulse_poller_checkpoint_lag_seconds")
            assert lag is not None and lag >= 7.5 * 86_400 - 5
            assert poll.checkpoint.counts()["emails"] == 0, "emails past the retention are forgotten"

    run(settings, scenario)
