"""The poller: reads the Email API over HTTP (httpx) and publishes what webhooks may have missed.

One cycle, in order (decisions in ``poll_core``, state in ``checkpoint``):

1. **discover emails**: list ``/v1/Emails`` from the high-water mark (``startDate``, inclusive) page by
   page (``pageSize`` up to 1,000, ``pageToken``); each page: publish its new transitions, wait for
   Kafka, then record the page in one checkpoint transaction. The mark is raised to the newest
   ``createdAt`` listed only with the last page, whatever order the API lists in (see docs/poller.md);
2. **discover operations**: the same over ``/v1/Emails/Operations``;
3. **follow operations**: GET every operation not yet COMPLETED or CANCELED; when its status changed,
   publish that and list its emails (``operationId``) at once;
4. **reconcile**: re-poll unsettled emails not looked at for ``reconcile_after`` (listed per operation,
   else fetched one by one); forget those past the retention;
5. forget checkpoint rows older than the retention; report the checkpoint lag.

Every request waits for a token (``rate_per_s``) and a slot (``concurrency``); 429, 5xx and network
errors are retried with backoff (``Retry-After`` honoured) up to ``max_attempts``, after which the
cycle ends and the next one resumes from the checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from adapters.publisher import Publisher, Rejected
from adapters.ratelimit import TokenBucket
from adapters.retry import Backoff, parse_retry_after, retriable
from poller import metrics
from poller.checkpoint import EMAILS, OPERATIONS, Checkpoint
from poller.decisions import (
    RETENTION,
    Observed,
    RetentionRisk,
    from_ms,
    observe_emails,
    observe_operation,
    plan_reconcile,
    retention_risk,
    to_ms,
)
from schemas.privacy import RecipientPrivacy

log = logging.getLogger(__name__)
Json = dict[str, Any]


class PollError(Exception):
    """The Email API did not answer usefully within the retry budget; the cycle stops here."""


@dataclass(frozen=True)
class PollerConfig:
    page_size: int = 1000
    interval_s: float = 10.0
    rate_per_s: float = 20.0
    burst: float = 10.0
    concurrency: int = 4
    reconcile_after_s: float = 900.0
    warn_after: timedelta = timedelta(days=6)
    retention: timedelta = RETENTION
    backoff: Backoff = field(default_factory=Backoff)


@dataclass(slots=True)
class PollStats:
    cycles: int = 0
    failed_cycles: int = 0
    requests: int = 0
    throttled: int = 0  # 429 answers
    backoffs: int = 0
    published: int = 0  # events published (and acknowledged by Kafka)
    reconciled: int = 0
    last_cycle_started: float = 0.0  # monotonic time the last completed cycle started
    retry_waits: list[float] = field(default_factory=list)  # the last few backoff waits (seconds)


class Poller:
    def __init__(
        self,
        client: httpx.AsyncClient,
        publisher: Publisher,
        checkpoint: Checkpoint,
        config: PollerConfig | None = None,
        privacy: RecipientPrivacy | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.publisher = publisher
        self.checkpoint = checkpoint
        self.config = config = config or PollerConfig()
        self.privacy = privacy or RecipientPrivacy()
        self.clock = clock  # wall seconds: when rows were looked at (survives restarts)
        self.rng = rng or random.Random()
        self.bucket = TokenBucket(config.rate_per_s, config.burst, time.monotonic)
        self.slots = asyncio.Semaphore(config.concurrency)
        self.stats = PollStats()
        self.api_now: datetime | None = None  # from the API's Date header

    async def run(self, stop: asyncio.Event) -> None:
        """Cycle every ``interval_s`` until ``stop`` is set; a failed cycle is logged and retried."""
        while not stop.is_set():
            await self.cycle_safely()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.interval_s)

    async def cycle_safely(self) -> bool:
        try:
            await self.cycle()
        except Exception as exc:  # the next cycle resumes from the checkpoint
            self.stats.failed_cycles += 1
            metrics.CYCLES.labels("failed").inc()
            log.warning("poll cycle failed: %s", exc)
            return False
        return True

    async def cycle(self) -> None:
        started = time.monotonic()
        with metrics.CYCLE_SECONDS.time():
            await self._discover(EMAILS, "/v1/Emails")
            await self._discover(OPERATIONS, "/v1/Emails/Operations")
            await self._follow_operations()
            await self._reconcile()
            self._prune()
        self.stats.cycles += 1
        self.stats.last_cycle_started = started
        metrics.CYCLES.labels("ok").inc()

    # ------------------------------------------------------------------ HTTP

    async def _get(self, endpoint: str, path: str, params: dict[str, str | int] | None = None) -> Json | None:
        """GET with rate limit, concurrency limit and retries; None on 404."""
        backoff = self.config.backoff
        for attempt in range(1, backoff.max_attempts + 1):
            wait = self.bucket.reserve()
            if wait > 0:
                await asyncio.sleep(wait)
            response: httpx.Response | None = None
            async with self.slots:
                self.stats.requests += 1
                try:
                    response = await self.client.get(path, params=params)
                except httpx.TransportError as exc:
                    log.debug("GET %s failed: %r", path, exc)
            outcome = _outcome(response)
            metrics.REQUESTS.labels(endpoint, outcome).inc()
            if response is not None:
                self._saw_date(response.headers.get("date"))
                if response.status_code == 200:
                    return dict(response.json())
                if response.status_code == 404:
                    return None
                if not retriable(response.status_code):
                    raise PollError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
                self.stats.throttled += response.status_code == 429
            if attempt == backoff.max_attempts:
                raise PollError(f"GET {path}: no answer after {attempt} attempts (last: {outcome})")
            header = response.headers.get("retry-after") if response is not None else None
            delay = backoff.delay(attempt, parse_retry_after(header, self._now()), self.rng)
            self.stats.backoffs += 1
            self.stats.retry_waits = [*self.stats.retry_waits[-99:], delay]
            metrics.BACKOFFS.labels(outcome).inc()
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _saw_date(self, header: str | None) -> None:
        if header:
            with contextlib.suppress(TypeError, ValueError):
                self.api_now = parsedate_to_datetime(header).astimezone(UTC)

    def _now(self) -> datetime:
        """API time: the last Date header seen, else the local clock."""
        return self.api_now or datetime.fromtimestamp(self.clock(), UTC)

    # ------------------------------------------------------------------ steps

    async def _discover(self, table: str, path: str) -> None:
        mark = self.checkpoint.high_water(table)
        params: dict[str, str | int] = {"pageSize": self.config.page_size}
        if mark is not None:
            params["startDate"] = _iso(from_ms(mark))
        first = True
        newest: int | None = None
        while True:
            page = await self._get(table, path, params)
            if page is None:
                raise PollError(f"GET {path} answered 404")
            if first and table == EMAILS:
                self._check_retention(mark)
                first = False
            token = page.get("nextPageToken")
            # The mark rises only with the last page: the API may list in any order, so until the
            # whole list was read an older item may still be on a later page. Pages already recorded
            # are not published again when a failed listing is repeated (their marks are known).
            newest = await self._apply(table, page.get(table) or [], newest, raise_mark=not token)
            if not token:
                return
            params["pageToken"] = str(token)

    async def _apply(
        self, table: str, resources: Sequence[Any], newest: int | None = None, raise_mark: bool = False
    ) -> int | None:
        """Publish the new transitions among ``resources``, then record them in one checkpoint
        transaction. Returns the newest ``createdAt`` of ``newest`` and these resources; with
        ``raise_mark`` the same transaction raises the high-water mark to it."""
        now = datetime.now(UTC)
        ids = [r["id"] for r in resources if isinstance(r, dict) and isinstance(r.get("id"), str)]
        known = self.checkpoint.known(table, ids)
        if table == EMAILS:
            observed = observe_emails(resources, known, now)
        else:
            observed = Observed()
            for raw in resources:
                previous = known.get(str(raw.get("id"))) if isinstance(raw, dict) else None
                one = observe_operation(raw, previous, now)
                observed.events += one.events
                observed.marks += one.marks
                observed.rejected += one.rejected
        await self._publish(table, observed)
        newest = max((m for m in (newest, observed.newest_created_ms) if m is not None), default=None)
        self.checkpoint.record(table, observed.marks, self.clock(), newest if raise_mark else None)
        return newest

    async def _publish(self, table: str, observed: Observed) -> None:
        events = [self.privacy.event(e) for e in observed.events]
        rejected = [
            Rejected(f"poller:{table}", r.index, self.privacy.scrub(r.payload), r.problems)
            for r in observed.rejected
        ]
        if events or rejected:
            await self.publisher.publish(events, rejected)  # PublishFailed ends the cycle, unrecorded
        self.stats.published += len(events)
        metrics.PUBLISHED.labels(table.rstrip("s")).inc(len(events))

    async def _follow_operations(self) -> None:
        async def follow(operation_id: str, before: str) -> None:
            resource = await self._get("operation", f"/v1/Emails/Operations/{operation_id}")
            if resource is None:  # gone: past the retention
                self.checkpoint.forget(OPERATIONS, [operation_id])
                return
            await self._apply(OPERATIONS, [resource])
            if resource.get("status") != before:
                await self._list_operation_emails(operation_id)

        await self._each([(m.id, m.status) for m in self.checkpoint.open_operations()], follow)

    async def _list_operation_emails(self, operation_id: str) -> None:
        params: dict[str, str | int] = {"pageSize": 1000, "operationId": operation_id}
        while True:
            page = await self._get(EMAILS, "/v1/Emails", params)
            if page is None:
                return
            await self._apply(EMAILS, page.get(EMAILS) or [])
            token = page.get("nextPageToken")
            if not token:
                return
            params["pageToken"] = str(token)

    async def _reconcile(self) -> None:
        due = self.checkpoint.due(self.clock() - self.config.reconcile_after_s)
        if not due:
            return
        plan = plan_reconcile(due, self._now(), self.config.retention)
        if plan.expired:
            self._expired(len(plan.expired))
            self.checkpoint.forget(EMAILS, plan.expired)

        async def relist(operation_id: str, _: object) -> None:
            await self._list_operation_emails(operation_id)

        async def fetch(email_id: str, _: object) -> None:
            resource = await self._get("email", f"/v1/Emails/{email_id}")
            if resource is None:
                self._expired(1)
                self.checkpoint.forget(EMAILS, [email_id])
            else:
                await self._apply(EMAILS, [resource])

        await self._each([(op, None) for op in plan.by_operation], relist)
        await self._each([(e, None) for e in plan.single], fetch)
        reconciled = len(due) - len(plan.expired)
        self.stats.reconciled += reconciled
        metrics.RECONCILED.inc(reconciled)

    async def _each(self, items: Sequence[tuple[str, Any]], step: Callable[[str, Any], Any]) -> None:
        """Run ``step`` for every item, ``concurrency`` at a time (the requests share the limits)."""
        for start in range(0, len(items), self.config.concurrency * 8):
            chunk = items[start : start + self.config.concurrency * 8]
            await asyncio.gather(*(step(item, extra) for item, extra in chunk))

    def _expired(self, count: int) -> None:
        metrics.EXPIRED.inc(count)
        log.warning("%d unsettled emails left the Email API's retention before settling", count)

    def _check_retention(self, mark: int | None) -> None:
        if mark is None:
            return
        lag = self._now() - from_ms(mark)
        metrics.CHECKPOINT_LAG.set(max(0.0, lag.total_seconds()))
        risk = retention_risk(lag, self.config.warn_after, self.config.retention)
        if risk is RetentionRisk.OK:
            return
        metrics.RETENTION_WARNINGS.labels(risk.value).inc()
        if risk is RetentionRisk.WARN:
            log.warning(
                "poller checkpoint is %s behind the Email API; records older than %s are deleted",
                lag,
                self.config.retention,
            )
        else:
            log.error(
                "poller checkpoint is %s behind, past the %s retention: emails created before %s are lost",
                lag,
                self.config.retention,
                _iso(self._now() - self.config.retention),
            )

    def _prune(self) -> None:
        horizon = to_ms(self._now() - self.config.retention)
        dropped = self.checkpoint.prune(horizon)
        if dropped:
            self._expired(dropped)
        mark = self.checkpoint.high_water(EMAILS)
        if mark is not None:
            metrics.CHECKPOINT_LAG.set(max(0.0, (self._now() - from_ms(mark)).total_seconds()))
        metrics.UNSETTLED.set(self.checkpoint.counts()["unsettled"])


def _outcome(response: httpx.Response | None) -> str:
    if response is None:
        return "transport_error"
    code = response.status_code
    if code == 200:
        return "ok"
    if code == 404:
        return "not_found"
    if code == 429:
        return "throttled"
    return "server_error" if code >= 500 else "client_error"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
