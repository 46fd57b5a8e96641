"""Composition roots: the only place that constructs adapters (Kafka, ClickHouse, HTTP server)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from urllib.parse import quote

import httpx
import uvicorn
import uvloop
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import make_asgi_app
from pydantic import SecretStr
from starlette.types import ASGIApp

from adapters.clickhouse import ClickHouseStore, connect
from adapters.journal import Journal, read_segment
from adapters.publisher import KafkaPublisher, create_producer, publish_tracked
from adapters.retry import Backoff
from alerting.evaluate import Evaluator
from alerting.notify import AlertHistory, KafkaNotifier, Notifier, WebhookNotifier
from alerting.outbox import Outbox
from alerting.runner import AlertRunner, utc_now
from analytics.dashboard import dashboard_app
from analytics.service import AnalyticsService
from ingest.app import IngestConfig, create_app
from mailpulse.broker import EmbeddedBroker
from mailpulse.health import alerts_health_app, health_app
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from mailpulse.unsigned_ingest import warn_unsigned
from poller.checkpoint import Checkpoint
from poller.cycle import Poller, PollerConfig
from processors.status_processor import ProcessorConfig, StatusProcessor, create_consumer
from schemas.alert_rules import load_rules
from schemas.privacy import RecipientPrivacy
from schemas.signatures import SendGridVerifier, TwilioVerifier, load_public_key
from storage.migrations import Retention

log = logging.getLogger(__name__)
T = TypeVar("T")


# The collector's default (700 allocations per young collection) walks the processor's large live heap
# (a 20,000-event batch) often enough to cost a large share of the drain time
# (docs/performance.md#hot-path-choices).
# The hot paths make almost no reference cycles, so rarer collections cost little memory.
GC_THRESHOLDS = (50_000, 20, 100)


def run_async(main: Coroutine[object, object, T]) -> T:
    """Run a role's main coroutine on uvloop (the faster event loop: docs/performance.md#hot-path-choices),
    with fewer garbage collections (GC_THRESHOLDS)."""
    gc.collect()
    gc.freeze()  # what was imported and built at start-up is never scanned again
    gc.set_threshold(*GC_THRESHOLDS)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


@dataclass(frozen=True, slots=True)
class KafkaSite:
    """Where the roles of this process publish and consume."""

    bootstrap: str
    # On the embedded broker, for roles that acknowledge senders: the local log that makes their
    # acknowledgements survive the broker (adapters.journal). None on a Kafka of the operator's.
    journal: Journal | None = None
    # A new value each time an embedded broker starts (its offsets start again at 0), so that insert
    # deduplication tokens of earlier runs, which derive from offsets, never match new records.
    incarnation: str = ""


JOURNAL_TRIM_INTERVAL_S = 1.0


@contextlib.asynccontextmanager
async def kafka(settings: Settings, journal: bool = False) -> AsyncIterator[KafkaSite]:
    """Yield the configured Kafka, or an embedded Tansu broker that lives as long as the context, with
    mailpulse's topics present. ``journal``: this process acknowledges senders (ingest, poller); on
    the embedded broker their records then also go to a journal under data_dir, whose records of
    earlier runs are published again here, before anything new."""
    if settings.kafka_bootstrap:
        await _ensure_topics(settings, settings.kafka_bootstrap)
        yield KafkaSite(settings.kafka_bootstrap)
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log_ = Journal(settings.journal_dir, seal_after_s=settings.journal_seal_s) if journal else None
    broker = EmbeddedBroker(log_path=settings.data_dir / "tansu.log")
    try:
        broker.start()
        log.info("embedded Kafka (Tansu) on %s", broker.bootstrap)
        await _ensure_topics(settings, broker.bootstrap)
        trimming = None
        if log_ is not None:
            await replay_journal(log_, broker.bootstrap)
            trimming = asyncio.create_task(trim_journal(log_, settings, broker.bootstrap))
        try:
            yield KafkaSite(broker.bootstrap, log_, secrets.token_hex(8))
        finally:
            if trimming is not None:
                trimming.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await trimming
    finally:
        if log_ is not None:
            await log_.close()
        broker.stop()


async def _ensure_topics(settings: Settings, bootstrap: str) -> None:
    await ensure_topics(
        bootstrap,
        settings.topics,
        settings.partitions,
        settings.replication_factor,
        retention_ms=settings.topic_retention_ms or None,
    )


async def replay_journal(journal: Journal, bootstrap: str) -> None:
    """Publish the records of the journal's earlier segments again, one segment at a time."""
    if not journal.previous:
        return
    producer = create_producer(bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        landed: dict[str, dict[int, int]] = {}
        count = 0
        for segment in journal.previous:
            entries = list(read_segment(segment))
            count += len(entries)
            for topic, offsets in (await publish_tracked(producer, entries)).items():
                mine = landed.setdefault(topic, {})
                for partition, offset in offsets.items():
                    mine[partition] = max(offset, mine.get(partition, -1))
        journal.replayed(landed)
        log.warning("journal: %d records of earlier runs published again (not yet known loaded)", count)
    finally:
        await producer.stop()


async def trim_journal(journal: Journal, settings: Settings, bootstrap: str) -> None:
    """Delete journal segments the processors' group has committed past, every second."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        while True:
            await asyncio.sleep(JOURNAL_TRIM_INTERVAL_S)
            try:
                await _trim_once(journal, admin, settings.consumer_group, settings.status_topic)
            except (KafkaError, OSError) as exc:  # a later round tries again; the segments stay
                log.warning("journal: not trimmed this round (%r)", exc)
    finally:
        await admin.close()


async def _trim_once(journal: Journal, admin: AIOKafkaAdminClient, group: str, topic: str) -> None:
    journal.seal_due()
    if not journal.trimmable():
        return
    asked = [TopicPartition(topic, p) for p in sorted(journal.partitions(topic))]
    committed: dict[int, int] = {}
    if asked:  # partitions named: Tansu's answer to "all of the group's" does not decode
        offsets = await admin.list_consumer_group_offsets(group, partitions=asked)
        committed = {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    journal.trim(topic, committed)


async def serve_asgi(
    app: ASGIApp,
    host: str,
    port: int,
    stop: asyncio.Event,
    limit_concurrency: int | None = None,
    backlog: int = 2048,
) -> None:
    """Serve ``app`` until ``stop`` is set, then let in-flight requests finish. Past
    ``limit_concurrency`` connections or requests at once, uvicorn answers 503 instead of queueing
    work without end."""
    # No access log: at level warning it is never written, yet formatted per request.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        limit_concurrency=limit_concurrency,
        backlog=backlog,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task


async def serve_side_port(app: ASGIApp, host: str, port: int, stop: asyncio.Event, what: str) -> None:
    """A role's health/metrics port until ``stop``: 0 turns it off; a busy port is logged, never fatal
    (the role itself goes on)."""
    if not port:
        return
    try:
        await serve_asgi(app, host, port, stop)
    except SystemExit:  # uvicorn exits when it cannot bind
        log.warning("%s not served: port %s is busy", what, port)


async def serve_health(proc: StatusProcessor, settings: Settings, stop: asyncio.Event) -> None:
    """/healthz, /readyz, /metrics of `mailpulse process`."""
    app = health_app(proc)
    await serve_side_port(app, settings.ingest_host, settings.metrics_port, stop, "health and metrics")


def open_store(settings: Settings) -> ClickHouseStore:
    if not settings.clickhouse_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = ClickHouseStore(connect(settings.clickhouse_dsn()), settings.clickhouse_database)
    store.migrate(settings.clickhouse_cluster, retention(settings))
    return store


def retention(settings: Settings) -> Retention:
    return Retention(settings.retention_days, settings.rollup_retention_days)


def ingest_config(settings: Settings) -> IngestConfig:
    """What ingest enforces, from settings: limits, the configured signature checks, privacy."""
    tolerance = settings.signature_tolerance_s

    def sendgrid(key: str | None) -> SendGridVerifier | None:
        return SendGridVerifier(load_public_key(key), tolerance) if key else None

    token = settings.twilio_auth_token
    hash_key = settings.recipient_hash_key
    return IngestConfig(
        max_body_bytes=settings.max_body_bytes,
        max_elements=settings.max_batch_elements,
        inbound_max_bytes=settings.inbound_max_bytes,
        sendgrid=sendgrid(settings.sendgrid_webhook_public_key),
        sendgrid_inbound=sendgrid(settings.sendgrid_inbound_public_key),
        twilio=TwilioVerifier(token.get_secret_value(), settings.public_base_url) if token else None,
        privacy=RecipientPrivacy(
            settings.recipient_privacy, hash_key.get_secret_value().encode() if hash_key else None
        ),
    )


async def serve_ingest(
    settings: Settings,
    bootstrap: str,
    stop: asyncio.Event,
    port: int | None = None,
    journal: Journal | None = None,
) -> None:
    """Serve the ingest app until ``stop`` is set; then finish in-flight requests and flush Kafka.
    With a ``journal``, requests are acknowledged once their records are in it too."""
    producer = create_producer(bootstrap, settings.kafka_enable_idempotence)
    await producer.start()
    try:
        publisher = KafkaPublisher(
            producer,
            settings.status_topic,
            settings.deadletter_topic,
            settings.publish_timeout_s,
            settings.ingest_max_queued_bytes,
            journal=journal,
        )
        config = ingest_config(settings)
        warn_unsigned(config)
        app = create_app(publisher, config)
        await serve_asgi(
            app,
            settings.ingest_host,
            settings.ingest_port if port is None else port,
            stop,
            settings.ingest_max_connections,
            settings.ingest_backlog,
        )
    finally:
        await producer.stop()


async def wait_listening(host: str, port: int, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                _, writer = await asyncio.open_connection(host, port)
                writer.close()
                await writer.wait_closed()
                return
            except OSError:
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def processor(
    settings: Settings, bootstrap: str, store: ClickHouseStore, incarnation: str = ""
) -> AsyncIterator[StatusProcessor]:
    """A started, subscribed processor; on exit it leaves the group (offsets already committed).
    ``incarnation`` is the embedded broker's (KafkaSite): it keeps insert tokens of runs apart."""
    consumer = create_consumer(bootstrap, settings.consumer_group, settings.consumer_session_timeout_ms)
    producer = create_producer(bootstrap, settings.kafka_enable_idempotence)
    config = ProcessorConfig(
        topic=settings.status_topic,
        deadletter_topic=settings.deadletter_topic,
        consumer_group=settings.consumer_group,
        batch_max_records=settings.batch_max_records,
        batch_wait_ms=settings.batch_wait_ms,
        stuck_after_s=settings.stuck_after_s,
        token_prefix=incarnation,
    )
    proc = StatusProcessor(consumer, producer, store, config)
    await producer.start()
    proc.subscribe()
    await consumer.start()
    try:
        yield proc
    finally:
        await consumer.stop()
        await producer.stop()


def poller_config(settings: Settings) -> PollerConfig:
    return PollerConfig(
        page_size=settings.poll_page_size,
        interval_s=settings.poll_interval_s,
        rate_per_s=settings.poll_rate_per_s,
        burst=max(1.0, settings.poll_rate_per_s / 2),
        concurrency=settings.poll_concurrency,
        reconcile_after_s=settings.poll_reconcile_after_s,
        warn_after=timedelta(seconds=settings.poll_retention_warn_s),
        backoff=Backoff(
            settings.poll_backoff_base_s, settings.poll_backoff_max_s, settings.poll_max_attempts
        ),
    )


@contextlib.asynccontextmanager
async def poller(
    settings: Settings,
    bootstrap: str,
    clock: Callable[[], float] = time.time,
    journal: Journal | None = None,
) -> AsyncIterator[Poller]:
    """A poller on the configured Email API, publishing to the status topic, with its checkpoint.
    ``clock`` (wall seconds) times reconciliation; tests inject their own. With a ``journal``, its
    checkpoint moves only once what it published is in the journal too."""
    producer = create_producer(bootstrap, settings.kafka_enable_idempotence)
    await producer.start()
    sid, secret = settings.email_api_key_sid, settings.email_api_key_secret
    auth = httpx.BasicAuth(sid, secret.get_secret_value()) if sid and secret else None
    checkpoint = Checkpoint(settings.poll_checkpoint_path)
    try:
        async with httpx.AsyncClient(
            base_url=settings.email_api_base_url, auth=auth, timeout=settings.poll_timeout_s
        ) as client:
            publisher = KafkaPublisher(
                producer,
                settings.status_topic,
                settings.deadletter_topic,
                settings.publish_timeout_s,
                journal=journal,
            )
            privacy = ingest_config(settings).privacy
            yield Poller(client, publisher, checkpoint, poller_config(settings), privacy, clock)
    finally:
        checkpoint.close()
        await producer.stop()


async def serve_poll_metrics(settings: Settings, stop: asyncio.Event) -> None:
    """/metrics of `mailpulse poll`."""
    port = settings.poll_metrics_port
    await serve_side_port(make_asgi_app(), settings.ingest_host, port, stop, "poller metrics")


@contextlib.asynccontextmanager
async def alerts_runner(
    settings: Settings,
    bootstrap: str,
    store: ClickHouseStore,
    clock: Callable[[], datetime] = utc_now,
) -> AsyncIterator[AlertRunner]:
    """The alert loop with its rules, the alerts table, the Kafka topic and (if set) the webhook.
    ``clock`` is the evaluation time; tests inject their own."""
    rules = load_rules(settings.alerts_rules_file)
    producer = create_producer(bootstrap, settings.kafka_enable_idempotence)
    await producer.start()
    try:
        async with httpx.AsyncClient(timeout=settings.alerts_webhook_timeout_s) as client:
            notifiers: list[Notifier] = [KafkaNotifier(producer, settings.alerts_topic)]
            if settings.alerts_webhook_url is not None:
                backoff = Backoff(0.5, 30.0, settings.alerts_webhook_attempts)
                url = settings.alerts_webhook_url.get_secret_value()
                notifiers.append(WebhookNotifier(client, url, backoff))
            evaluator = Evaluator(store.query, store.database)
            yield AlertRunner(
                rules,
                evaluator,
                AlertHistory(store),
                notifiers,
                settings.alerts_interval_s,
                clock,
                Outbox(store),
                settings.alerts_notify_deadline_s,
                settings.alerts_notify_expiry_s,
            )
    finally:
        await producer.stop()


async def serve_alerts_health(runner: AlertRunner, settings: Settings, stop: asyncio.Event) -> None:
    """/healthz and /metrics of `mailpulse alerts`."""
    app, port = alerts_health_app(runner), settings.alerts_metrics_port
    await serve_side_port(app, settings.ingest_host, port, stop, "alerts health and metrics")


def api_token(settings: Settings) -> SecretStr:
    """The configured API token, else a random one for this run: the API is never open."""
    return settings.api_token or SecretStr(secrets.token_urlsafe(24))


def shown_token(settings: Settings, token: SecretStr) -> SecretStr | None:
    """The token a banner may print: only one mailpulse generated (the operator's stays in its secret)."""
    return None if settings.api_token else token


def dashboard_url(host: str, port: int, token: SecretStr | None) -> str:
    """The dashboard's URL; with ``token``, one that opens the API too (the page reads #token=)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{shown}:{port}/dashboard"
    return url if token is None else f"{url}#token={quote(token.get_secret_value(), safe='')}"


async def serve_dashboard(
    settings: Settings, store: ClickHouseStore, token: SecretStr, port: int, stop: asyncio.Event
) -> None:
    """The /dashboard page, its /api and /healthz until ``stop`` is set; thresholds from the alert rules."""
    rules = load_rules(settings.alerts_rules_file)
    service = AnalyticsService(store.client, store.database, rules)
    app = dashboard_app(service, token, settings.dashboard_refresh_s)
    await serve_asgi(app, settings.dashboard_host, port, stop)
