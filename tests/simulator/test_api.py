"""The simulator's Email API over real HTTP on loopback: validation answers, operations over
(manually advanced) time, pagination end to end, 429 with Retry-After, auth, the truth dump."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson

from simulator.clock import ManualSource
from simulator.lifecycle import Outcomes
from simulator.server import SimulatorConfig, SimulatorServer
from simulator.validation import MAX_RECIPIENTS, MAX_REQUEST_BYTES
from tests.simulator.send_requests import RULES, valid

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
Scenario = Callable[[SimulatorServer, httpx.AsyncClient, ManualSource], Awaitable[None]]


def run(scenario: Scenario, **config: Any) -> None:
    """Run ``scenario`` against a simulator on a free loopback port whose API clock only moves when told."""
    source = ManualSource()

    async def main() -> None:
        sim_config = SimulatorConfig(start=T0, source=source, **config)
        async with (
            SimulatorServer(sim_config) as sim,
            httpx.AsyncClient(base_url=sim.base_url, timeout=30) as client,
        ):
            assert sim.base_url.startswith("http://127.0.0.1:")
            await scenario(sim, client, source)

    asyncio.run(asyncio.wait_for(main(), 60))


def recipients(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"address": f"r{i}@example.com", "variables": {"firstName": "R"}} for i in range(start, start + n)
    ]


def test_every_rule_is_answered_in_one_documented_error_body() -> None:
    async def scenario(sim: SimulatorServer, client: httpx.AsyncClient, source: ManualSource) -> None:
        for rule, (body, (field, code)) in RULES.items():
            content = body if isinstance(body, bytes) else orjson.dumps(body)
            # The sendAt rules are written against 2026-11-23T10:00Z, the simulator's start.
            response = await client.post(
                "/v1/Emails", content=content, headers={"content-type": "application/json"}
            )
            assert response.status_code == 400, rule
            answer = response.json()
            assert answer["status"] == 400 and answer["code"] == "invalid_request", rule
            assert [(e["field"], e["code"]) for e in answer["errors"]] == [(field, code)], rule
            assert all(e["message"] for e in answer["errors"])
        too_big = valid(
            to=recipients(MAX_RECIPIENTS + 1),
            attachments=[
                {"filename": "a.bin", "contentType": "application/pdf", "content": "A" * MAX_REQUEST_BYTES}
            ],
            content={"subject": "x"},
        )
        response = await client.post("/v1/Emails", json=too_big)
        assert response.status_code == 400
        assert [e["code"] for e in response.json()["errors"]] == [
            "request_too_large",
            "too_many_recipients",
            "required",
        ]
        assert sim.simulator.emails == {}, "nothing invalid was accepted"

    run(scenario)


def test_accepted_requests_become_operations_that_move_over_time() -> None:
    async def scenario(sim: SimulatorServer, client: httpx.AsyncClient, source: ManualSource) -> None:
        send_at = "2026-11-23T11:00:00.000Z"
        scheduled = await client.post(
            "/v1/Emails", json=valid(to=recipients(3), schedule={"sendAt": [send_at]})
        )
        assert scheduled.status_code == 202
        answer = scheduled.json()
        assert answer["operationId"].startswith("comms_operation_")
        location = answer["operationLocation"]
        assert location == f"{sim.base_url}/v1/Emails/Operations/{answer['operationId']}"
        seen = [(await client.get(location)).json()["status"]]
        for step in (1800, 1801, 3 * 3600):
            source.advance(step)
            seen.append((await client.get(location)).json()["status"])
        assert seen == ["SCHEDULED", "SCHEDULED", "PROCESSING", "COMPLETED"]
        final = (await client.get(location)).json()
        assert final["stats"]["total"] == 3 and final["stats"]["scheduled"] == 0
        email_id = sim.simulator.operations[answer["operationId"]].email_ids[0]
        email = (await client.get(f"/v1/Emails/{email_id}")).json()
        assert email["operationId"] == answer["operationId"] and email["scheduledFor"] == send_at
        for missing in ("/v1/Emails/comms_email_nope", "/v1/Emails/Operations/comms_operation_nope"):
            response = await client.get(missing)
            assert response.status_code == 404 and response.json()["code"] == "not_found"
        date = parsedate_to_datetime((await client.get(location)).headers["date"])
        assert date == (T0 + timedelta(seconds=1800 + 1801 + 3 * 3600)).replace(microsecond=0)

    run(scenario)


def test_scheduled_emails_can_all_be_canceled() -> None:
    async def scenario(sim: SimulatorServer, client: httpx.AsyncClient, source: ManualSource) -> None:
        send_at = (T0 + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
        answer = (
            await client.post("/v1/Emails", json=valid(to=recipients(4), schedule={"sendAt": [send_at]}))
        ).json()
        source.advance(2 * 3600)
        operation = (await client.get(answer["operationLocation"])).json()
        assert operation["status"] == "CANCELED" and operation["stats"]["canceled"] == 4

    run(scenario, outcomes=Outcomes(canceled=1.0))


def test_pagination_end_to_end_with_pages_of_1000_and_the_default_50() -> None:
    async def scenario(sim: SimulatorServer, client: httpx.AsyncClient, source: ManualSource) -> None:
        for start in (0, 1000, 2000):
            response = await client.post(
                "/v1/Emails", json=valid(to=recipients(1000 if start < 2000 else 600, start))
            )
            assert response.status_code == 202
            source.advance(0.5)
        source.advance(60)
        now = sim.clock.now()  # replies to the mail exist only once they arrive
        everything = sorted(
            (e.created_at, e.id) for e in sim.simulator.emails.values() if e.created_at <= now
        )
        assert len(everything) >= 2600
        for size, pages_expected in ((1000, 3), (None, -(-len(everything) // 50))):
            ids, pages, token = [], 0, None
            while True:
                params: dict[str, str | int] = {} if size is None else {"pageSize": size}
                if token:
                    params["pageToken"] = token
                response = await client.get("/v1/Emails", params=params)
                assert response.status_code == 200
                page = response.json()
                assert len(page["emails"]) <= (size or 50)
                ids += [e["id"] for e in page["emails"]]
                pages += 1
                token = page["nextPageToken"]
                if not token:
                    break
            assert ids == [i for _, i in everything], "no duplicates, no gaps, oldest first"
            assert pages == pages_expected
        operations = (await client.get("/v1/Emails/Operations", params={"pageSize": 2})).json()
        assert len(operations["operations"]) == 2 and operations["nextPageToken"]
        one_op = next(iter(sim.simulator.operations))
        listed = (await client.get("/v1/Emails", params={"operationId": one_op, "pageSize": 1000})).json()
        assert {e["id"] for e in listed["emails"]} == set(sim.simulator.operations[one_op].email_ids)
        refused: list[dict[str, str | int]] = [{"pageSize": 0}, {"pageSize": 1001}, {"pageToken": "garbage"}]
        for params in refused:
            response = await client.get("/v1/Emails", params=params)
            assert response.status_code == 400 and response.json()["errors"], params
        foreign = (await client.get("/v1/Emails", params={"pageSize": 1})).json()["nextPageToken"]
        response = await client.get("/v1/Emails", params={"pageToken": foreign, "status": "SENT"})
        assert response.status_code == 400 and "other filters" in response.json()["message"]

    run(scenario)


def test_above_the_rate_limit_the_api_answers_429_with_retry_after() -> None:
    async def scenario(sim: SimulatorServer, client: httpx.AsyncClient, source: ManualSource) -> None:
        answers = [(await client.get("/v1/Emails")).status_code for _ in range(8)]
        assert answers[:5] == [200] * 5 and 429 in answers[5:]
        refused = await client.get("/v1/Emails")
        assert refused.status_code == 429 and refused.json()["code"] == "too_many_requests"
        retry_after = int(refused.headers["Retry-After"])
        assert retry_after >= 1
        started = time.monotonic()
        await asyncio.sleep(retry_after)
        assert (await client.get("/v1/Emails")).status_code == 200
        assert time.monotonic() - started >= retry_after
        truth = (await client.get("/_sim/truth")).status_code
        assert truth == 200, "the simulator's own endpoints are not rate limited"

    run(scenario, rate_limit=2.0, rate_burst=5.0)


def test_credentials_are_required_when_configured() -> None:
    async def scenario(sim: SimulatorServer, client: httpx.AsyncClient, source: ManualSource) -> None:
        assert (await client.get("/v1/Emails")).status_code == 401
        wrong = await client.get("/v1/Emails", auth=("SKxxx", "wrong"))
        assert wrong.status_code == 401 and wrong.json()["code"] == "unauthorized"
        assert (await client.get("/v1/Emails", auth=("SKxxx", "secret"))).status_code == 200

    run(scenario, credentials=("SKxxx", "secret"))


def test_the_truth_dump_is_what_the_api_shows() -> None:
    async def scenario(sim: SimulatorServer, client: httpx.AsyncClient, source: ManualSource) -> None:
        await client.post("/v1/Emails", json=valid(to=recipients(20)))
        source.advance(sim.simulator.outcomes.longest_s + 3600)
        truth = (await client.get("/_sim/truth")).json()
        assert truth["settled"] is True
        listed = {
            e["id"]: e for e in (await client.get("/v1/Emails", params={"pageSize": 1000})).json()["emails"]
        }
        assert {t["id"] for t in truth["emails"]} == set(listed)
        for t in truth["emails"]:
            assert (t["status"], t["statusSince"]) == (
                listed[t["id"]]["status"],
                listed[t["id"]]["updatedAt"],
            )
            assert t["transitions"][-1] == {"status": t["status"], "at": t["statusSince"]}
        assert [o["status"] for o in truth["operations"]] == ["COMPLETED"]

    run(scenario)
