"""The simulator in-process: the API on a loopback port plus the loop that sends webhooks.

    async with SimulatorServer(SimulatorConfig(acceleration=1000, webhooks=(...,))) as sim:
        ... sim.base_url ...; await sim.wait_quiet(60)

Tests and the demo use it directly; ``mailpulse simulate`` runs it until interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType

import httpx
import uvicorn

from adapters.ratelimit import TokenBucket
from simulator.app import ApiConfig, create_app
from simulator.clock import SimClock
from simulator.core import Simulator
from simulator.lifecycle import Outcomes
from simulator.paging import ListOrder
from simulator.payloads import Signer
from simulator.sender import SendStats, WebhookSender
from simulator.webhooks import Batch, PlanStats, WebhookPlanner, WebhookPolicy, WebhookTarget

START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SimulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    acceleration: float = 1.0
    start: datetime | None = None  # API time at start (default: now)
    seed: int = 0
    outcomes: Outcomes = field(default_factory=Outcomes)
    rate_limit: float | None = None  # API requests per second before 429 (None: unlimited)
    rate_burst: float = 20.0
    error_rate: float = 0.0  # share of API requests answered 503
    list_order: ListOrder = ListOrder.ASCENDING  # order of /v1/Emails and /v1/Emails/Operations lists
    credentials: tuple[str, str] | None = field(default=None, repr=False)  # basic auth (key SID, secret)
    webhooks: tuple[WebhookTarget, ...] = ()
    policy: WebhookPolicy = field(default_factory=WebhookPolicy)
    signer: Signer = field(default_factory=Signer)
    tick_s: float = 0.02
    post_concurrency: int = 8
    source: Callable[[], float] = time.monotonic  # what the API clock runs on (tests: ManualSource)


class SimulatorServer:
    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config = config or SimulatorConfig()
        self.clock = SimClock(config.start, config.acceleration, config.source)
        self.simulator = Simulator(self.clock, config.outcomes, config.seed, order=config.list_order)
        self.planner = WebhookPlanner(config.webhooks, config.policy, random.Random(config.seed + 1))
        self.port = config.port
        self._client: httpx.AsyncClient | None = None
        self._sender: WebhookSender | None = None
        self._server: uvicorn.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._posting: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def plan_stats(self) -> PlanStats:
        return self.planner.stats

    @property
    def send_stats(self) -> SendStats:
        return self._sender.stats if self._sender else SendStats()

    async def start(self) -> SimulatorServer:
        config = self.config
        self._client = httpx.AsyncClient(limits=httpx.Limits(max_connections=config.post_concurrency))
        self._sender = WebhookSender(
            self._client, config.webhooks, config.policy, config.signer, random.Random(config.seed + 2)
        )
        bucket = (
            TokenBucket(config.rate_limit, config.rate_burst, time.monotonic) if config.rate_limit else None
        )
        api = ApiConfig(
            rate_limit=bucket,
            error_rate=config.error_rate,
            credentials=config.credentials,
            stats=self._stats,
            rng=random.Random(config.seed + 3),
        )
        uv_config = uvicorn.Config(
            create_app(self.simulator, api),
            host=config.host,
            port=config.port,
            log_level="warning",
            lifespan="off",
            date_header=False,  # the app sends Date in API time
        )
        self._server = server = uvicorn.Server(uv_config)
        serving = asyncio.create_task(server.serve())
        async with asyncio.timeout(START_TIMEOUT_S):
            while not server.started:
                if serving.done():
                    await serving  # raises why it could not start
                    raise RuntimeError("simulator server stopped while starting")
                await asyncio.sleep(0.01)
        self.port = int(server.servers[0].sockets[0].getsockname()[1])
        self._tasks = [serving, asyncio.create_task(self._tick())]
        return self

    def _stats(self) -> dict[str, object]:
        plan = self.planner.stats
        return {
            "webhookEvents": plan.events,
            "webhookDropped": plan.dropped,
            "webhookCopies": plan.copies,
            "webhookPending": self.planner.pending + len(self._posting),
            **self.send_stats.as_dict(),
        }

    async def _tick(self) -> None:
        """Hand what happened to the planner, and due POSTs to the sender, every ``tick_s``."""
        assert self._sender is not None
        limit = asyncio.Semaphore(self.config.post_concurrency)
        while not self._stopping.is_set():
            now_real = time.monotonic()
            for happening in self.simulator.due(self.clock.now()):
                self.planner.add(happening, self.simulator, now_real)
            for batch in self.planner.take(now_real):
                task = asyncio.create_task(self._post(limit, batch))
                self._posting.add(task)
                task.add_done_callback(self._posting.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.config.tick_s)

    async def _post(self, limit: asyncio.Semaphore, batch: Batch) -> None:
        assert self._sender is not None
        async with limit:
            await self._sender.deliver(batch)

    def quiet(self) -> bool:
        """Everything planned has happened, and every webhook was sent, dropped or given up."""
        settled = self.simulator.settled(self.clock.now()) and self.simulator.pending == 0
        return settled and self.planner.pending == 0 and not self._posting

    async def wait_quiet(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.quiet():
            ticking = self._tasks[1] if len(self._tasks) > 1 else None
            if ticking is not None and ticking.done():
                ticking.result()  # the webhook loop died: say why
                raise RuntimeError("the webhook loop stopped")
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulator not quiet after {timeout_s}s: {self._stats()}")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        for task in [*self._posting]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._posting, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> SimulatorServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
