"""Operator actions on Kafka: describe topics, move the processors' group to replay history."""

from __future__ import annotations

import asyncio
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from mailpulse.settings import Settings

JOIN_TIMEOUT_S = 60.0


async def describe_topics(bootstrap: str, topics: list[str]) -> dict[str, dict[int, int]]:
    """Per topic, per partition: the end offset (records written so far)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        out: dict[str, dict[int, int]] = {}
        for topic in topics:
            partitions = sorted(consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))
            tps = [TopicPartition(topic, p) for p in partitions]
            ends = await consumer.end_offsets(tps) if tps else {}
            out[topic] = {tp.partition: ends[tp] for tp in tps}
        return out
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def rewind_group(settings: Settings, bootstrap: str, since: datetime | None) -> dict[int, int]:
    """Point the processors' group at the first record at or after ``since`` (all history if None).

    Run it while the processors are stopped. Replaying is safe: events already loaded are recognised as
    duplicates, so a replay only fills what is missing (after a restore, or a newly added table)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
        session_timeout_ms=settings.consumer_session_timeout_ms,
        heartbeat_interval_ms=min(3000, settings.consumer_session_timeout_ms // 4),
    )
    # Join the group like a processor would: only a member may commit, and owning every partition
    # proves that no processor is running.
    consumer.subscribe([settings.status_topic])
    await consumer.start()
    try:
        async with asyncio.timeout(JOIN_TIMEOUT_S):
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=100)
        tps = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        expected = consumer.partitions_for_topic(settings.status_topic) or set()
        if {tp.partition for tp in tps} != expected:
            raise RuntimeError("other members hold partitions: stop the processors before a replay")
        if since is None:
            targets = await consumer.beginning_offsets(tps)
        else:
            found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
            ends = await consumer.end_offsets(tps)
            targets = {tp: found[tp].offset if found.get(tp) else ends[tp] for tp in tps}
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in targets.items()})
        return {tp.partition: offset for tp, offset in targets.items()}
    finally:
        await consumer.stop()
