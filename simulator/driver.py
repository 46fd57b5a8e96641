"""Realistic send requests posted to an Email API (the simulator, over HTTP), as a client would.

Requests carry 1..``max_recipients`` recipients with template variables, tags, sometimes attachments,
and ``scheduled_share`` of them a ``schedule.sendAt`` a few minutes to an hour ahead (API time, read
from the simulator's ``/_sim/clock``). 429 answers are retried after ``Retry-After``; 5xx and network
errors with exponential backoff; a 400 is a bug in the driver and raises.
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from simulator.model import iso

MAX_ATTEMPTS = 10
_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "globex.com", "initech.io", "hooli.xyz")
_FIRST = ("ana", "ben", "chloe", "david", "emma", "farid", "grace", "hiro", "isabel", "jamal", "kate", "liam")
_SENDERS = (("orders@acme-shop.com", "Acme Shop"), ("hello@mail.northwind.io", "Northwind"))
_CAMPAIGNS = ("welcome-2026", "order-shipped", "password-reset", "newsletter-2026-11", "black-friday")
_PDF = base64.b64encode(b"%PDF-1.4 simulated invoice").decode()


@dataclass(frozen=True, slots=True)
class Traffic:
    emails: int
    max_recipients: int = 100
    scheduled_share: float = 0.08
    schedule_ahead_s: tuple[float, float] = (120.0, 3600.0)
    attachment_share: float = 0.1
    seed: int = 0


@dataclass(slots=True)
class DriveStats:
    requests: int = 0
    emails: int = 0
    throttled: int = 0  # 429 answers
    retries: int = 0
    operations: list[str] = field(default_factory=list)


def requests(traffic: Traffic) -> Iterator[tuple[dict[str, Any], bool]]:
    """Send request bodies (without ``schedule``) and whether each is to be scheduled."""
    rng = random.Random(traffic.seed)
    made = 0
    while made < traffic.emails:
        count = min(traffic.emails - made, rng.randint(1, traffic.max_recipients))
        address, name = rng.choice(_SENDERS)
        recipients = []
        for n in range(made, made + count):
            first = rng.choice(_FIRST)
            recipient = {
                "address": f"{first}.{n}.{traffic.seed}@{rng.choice(_DOMAINS)}",
                "variables": {"firstName": first.title(), "orderId": str(100000 + n)},
            }
            recipients.append(recipient)
        body: dict[str, Any] = {
            "from": {"address": address, "name": name},
            "to": recipients,
            "content": {
                "subject": "Hello {{firstName}}",
                "html": "<p>Hi {{ firstName }}, order {{orderId}} is on its way.</p>",
            },
            "tags": {"campaign": rng.choice(_CAMPAIGNS), "tenant": "acme"},
        }
        if rng.random() < traffic.attachment_share:
            body["attachments"] = [
                {"filename": "invoice.pdf", "contentType": "application/pdf", "content": _PDF}
            ]
        made += count
        yield body, rng.random() < traffic.scheduled_share


async def api_now(client: httpx.AsyncClient) -> datetime:
    response = await client.get("/_sim/clock")
    response.raise_for_status()
    return datetime.fromisoformat(response.json()["now"])


async def post_send(
    client: httpx.AsyncClient,
    body: dict[str, Any],
    stats: DriveStats,
    rng: random.Random,
    ahead: timedelta | None = None,
) -> str:
    """POST one send request until it is accepted; its operation id. With ``ahead`` the request is
    scheduled that far from the API's now, computed again for every attempt (accelerated time runs on
    while a 429 is waited out)."""
    for attempt in range(MAX_ATTEMPTS):
        if ahead is not None:
            body["schedule"] = {"sendAt": [iso(await api_now(client) + ahead)]}
        try:
            response = await client.post("/v1/Emails", json=body)
        except httpx.TransportError:
            stats.retries += 1
            await asyncio.sleep(min(5.0, 0.1 * 2**attempt) * rng.random())
            continue
        if response.status_code == 202:
            stats.requests += 1
            stats.emails += len(body["to"])
            return str(response.json()["operationId"])
        if response.status_code == 400 and ahead is not None and "send_at_in_past" in response.text:
            # Accelerated API time overtook the schedule while the request was in flight (a busy
            # machine): a real client would pick a new time too.
            stats.retries += 1
            continue
        if response.status_code == 400:
            raise ValueError(f"the API refused a generated request: {response.text[:500]}")
        stats.retries += 1
        if response.status_code == 429:
            stats.throttled += 1
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")) + 0.1 * rng.random())
        else:
            await asyncio.sleep(min(5.0, 0.1 * 2**attempt) * rng.random())
    raise RuntimeError(f"send request not accepted after {MAX_ATTEMPTS} attempts")


async def drive(client: httpx.AsyncClient, traffic: Traffic, concurrency: int = 4) -> DriveStats:
    """Post all of ``traffic``'s requests with ``concurrency`` requests in flight."""
    stats = DriveStats()
    rng = random.Random(traffic.seed + 1)
    queue: asyncio.Queue[tuple[dict[str, Any], bool]] = asyncio.Queue()
    for item in requests(traffic):
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            body, scheduled = queue.get_nowait()
            ahead = timedelta(seconds=rng.uniform(*traffic.schedule_ahead_s)) if scheduled else None
            stats.operations.append(await post_send(client, body, stats, rng, ahead))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return stats
