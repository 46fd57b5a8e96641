"""Create mailpulse's topics; waits until the broker answers Kafka requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)


async def _warn_on_partition_count(admin: AIOKafkaAdminClient, topics: list[str], partitions: int) -> None:
    # A topic made elsewhere (or auto-created by a broker on first use) may have another count.
    if not topics:
        return
    for described in await admin.describe_topics(topics):
        found = len(described.get("partitions", []))
        if found != partitions:
            log.warning(
                "topic %s has %d partitions, MAILPULSE_PARTITIONS is %d",
                described["topic"],
                found,
                partitions,
            )


async def ensure_topics(
    bootstrap: str,
    topics: list[str],
    partitions: int,
    replication: int = 1,
    timeout_s: float = 20.0,
    retention_ms: int | None = None,
) -> None:
    """Create ``topics`` if missing. Retries until the broker answers, at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            await _warn_on_partition_count(admin, [t for t in topics if t in existing], partitions)
            configs = {"retention.ms": str(retention_ms)} if retention_ms else None
            missing = [
                NewTopic(t, partitions, replication, topic_configs=configs)
                for t in topics
                if t not in existing
            ]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):  # a concurrent creator won
                    await admin.create_topics(missing)
            return
        except (KafkaConnectionError, KafkaError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
        finally:
            await admin.close()
