"""The figures every surface shows equal the ones the ground truth implies, exactly.

Generated traffic (simulator.traffic: both providers, duplicated deliveries, out-of-order arrival) goes
through the real pipeline (ingest over loopback HTTP, the Tansu broker, the processor, chDB), with a share
of the webhooks dropped (intermediate statuses only: a message's final status always arrives, so the truth
stays knowable, while many messages lose their QUEUED, SENT or DELIVERED) and a share held back and posted
last (late events). The expected figures are computed here from the generator's final statuses, with the
formulas of docs/figures.md written out independently; `mailpulse report --json`, /api/summary,
/api/funnel and the dashboard page in headless Chromium must all show exactly those: the outcome classes,
the funnel, and the deliverability signals (spam complaints, unsubscribes, blocks, deferrals), in total,
per mailbox provider and (bounces) per bounce classification.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr

from adapters.clickhouse import ClickHouseStore
from analytics.api import create_app
from analytics.dashboard import dashboard_app
from analytics.report import report
from analytics.service import AnalyticsService
from mailpulse.settings import Settings
from schemas.event import CanonicalEvent
from schemas.sendgrid import parse_sendgrid_event
from schemas.twilio import parse_cloud_event
from simulator.traffic import SENDGRID, Payload, SignalRates, Traffic, Truth, generate
from tests.integration.analytics.browser import CHROMIUM, Dom, chromium, serving
from tests.integration.analytics.client import ApiClient
from tests.integration.groundtruth import arrival_order
from tests.integration.pipeline import running_pipeline, wait_for_records

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

MESSAGES = 700
DROP_RATE = 0.35  # of the intermediate status events: every copy of a dropped event is lost
LATE_RATE = 0.15  # of the deliveries: posted after all the others
TOKEN = "figures-truth-token"
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
# More of every signal than the defaults give, so that each figure is far from zero in 700 messages.
SIGNALS = SignalRates(blocked=0.4, spam_report=0.05, unsubscribe=0.05, deferral=0.2)
# The generator's recipient domains by mailbox provider, written out (docs/mailbox-providers.md).
MAILBOX_PROVIDER = {"gmail.com": "google", "yahoo.com": "yahoo", "aol.com": "yahoo",
                    "outlook.com": "microsoft", "hotmail.com": "microsoft", "icloud.com": "apple",
                    "comcast.net": "comcast"}  # fmt: skip

# docs/figures.md, written out (not imported from schemas.outcomes).
CLASS_OF = {"DELIVERED": "delivered", "OPENED": "delivered", "UNDELIVERED": "bounced", "FAILED": "failed",
            "CANCELED": "canceled"}  # fmt: skip
REACHED = {
    "QUEUED": {"QUEUED", "FAILED", "SENT", "UNDELIVERED", "DELIVERED", "OPENED"},
    "SENT": {"SENT", "UNDELIVERED", "DELIVERED", "OPENED"},
}


def mailbox_provider(t: Truth) -> str:
    return MAILBOX_PROVIDER.get(t.recipient.rsplit("@", 1)[1], "other")


def truth_figures(truths: list[Truth]) -> dict[str, Any]:
    """messages, counts, rates and funnel from the generator's final statuses, clicks and signals."""
    names = ("delivered", "bounced", "failed", "canceled", "opened", "clicked")
    counts = dict.fromkeys((*names, "spam_reported", "unsubscribed", "blocked", "deferred"), 0)
    pending = queued = sent = 0
    for t in truths:
        final = t.status.value
        if final == "INBOUND":
            continue
        labels = {label for label, _ in t.events}
        clicked = "click" in labels
        if final in CLASS_OF:
            counts[CLASS_OF[final]] += 1
        else:
            pending += 1
        if CLASS_OF.get(final) == "delivered":
            counts["opened"] += final == "OPENED" or clicked
            counts["clicked"] += clicked
            counts["spam_reported"] += "spamreport" in labels
            counts["unsubscribed"] += bool(labels & {"unsubscribe", "group_unsubscribe"})
        counts["blocked"] += final == "UNDELIVERED" and t.blocked
        counts["deferred"] += final in REACHED["SENT"] and "deferred" in labels
        queued += final in REACHED["QUEUED"]
        sent += final in REACHED["SENT"]
    outcomes = counts["delivered"] + counts["bounced"] + counts["failed"] + counts["canceled"]

    def ratio(a: int, b: int) -> float | None:
        return a / b if b else None

    rates = {name: ratio(counts[name], outcomes) for name in ("delivered", "bounced", "failed", "canceled")}
    rates["failure"] = ratio(counts["bounced"] + counts["failed"], outcomes)
    rates["opened"] = ratio(counts["opened"], counts["delivered"])
    rates["clicked"] = ratio(counts["clicked"], counts["delivered"])
    rates["spam"] = ratio(counts["spam_reported"], counts["delivered"])
    rates["unsubscribe"] = ratio(counts["unsubscribed"], counts["delivered"])
    rates["block"] = ratio(counts["blocked"], outcomes)
    rates["deferral"] = ratio(counts["deferred"], sent)
    funnel = [["QUEUED", queued], ["SENT", sent], ["DELIVERED", counts["delivered"]],
              ["OPENED", counts["opened"]], ["CLICKED", counts["clicked"]]]  # fmt: skip
    return {"messages": outcomes, "pending": pending, "counts": counts, "rates": rates, "funnel": funnel}


def parsed(provider: str, raw: Payload) -> CanonicalEvent:
    at = datetime.now(UTC)
    return parse_sendgrid_event(raw, at) if provider == SENDGRID else parse_cloud_event(raw, at)


def deliveries(traffic: Traffic) -> tuple[list[tuple[str, Payload]], int, int]:
    """The deliveries to post, late ones last; with how many messages lost an event and how many events
    were dropped. Dropped: intermediate status events (not the message's final status)."""
    finals = {mid: t.status for mid, t in traffic.truth.items()}
    on_time: list[tuple[str, Payload]] = []
    late: list[tuple[str, Payload]] = []
    dropped: set[tuple[str, str, datetime]] = set()
    rng = random.Random(19)
    for provider, raw in arrival_order(traffic):
        event = parsed(provider, raw)
        if event.status is not None and event.status != finals[event.message_id]:
            identity = (event.message_id, event.status.value, event.occurred_at)
            # The same verdict for every copy of an event: a lost webhook is lost with its retries.
            if random.Random(repr(identity)).random() < DROP_RATE:
                dropped.add(identity)
                continue
        (late if rng.random() < LATE_RATE else on_time).append((provider, raw))
    return on_time + late, len({d[0] for d in dropped}), len(dropped)


async def post(settings: Settings, store: ClickHouseStore, posts: list[tuple[str, Payload]]) -> None:
    async with running_pipeline(settings, store) as (client, proc):
        batch: list[Payload] = []
        for n, (provider, raw) in enumerate(posts):
            batch.append(raw)
            last = n + 1 == len(posts) or posts[n + 1][0] != provider or len(batch) == 200
            if last:
                path = "/webhooks/sendgrid/events" if provider == SENDGRID else "/webhooks/twilio/events"
                answer = await client.post(path, json=batch)
                assert answer.status_code == 200, answer.text
                batch = []
        await wait_for_records(proc, len(posts), timeout_s=120)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="chromium missing: `make test` installs it",
)
def test_report_api_and_dashboard_equal_the_truth(
    settings: Settings, store: ClickHouseStore, tmp_path: Path
) -> None:
    traffic = generate(MESSAGES, seed=19, duplicate_rate=0.2, start=START, signals=SIGNALS)
    posts, lost, dropped = deliveries(traffic)
    want = truth_figures(list(traffic.truth.values()))
    assert dropped > 100 and lost > MESSAGES // 5, "many messages lost an intermediate status"
    assert len(posts) > len({(p, json.dumps(r, sort_keys=True)) for p, r in posts}), "duplicates posted"
    assert all(v > 0 for v in want["counts"].values()), "every class, engagement and signal occurs"
    asyncio.run(asyncio.wait_for(post(settings, store, posts), 150))

    times = [at for t in traffic.truth.values() for _, at in t.events]
    window = {"from": iso(min(times) - timedelta(minutes=1)), "to": iso(max(times) + timedelta(minutes=2))}
    service = AnalyticsService(store.client, store.database)
    figures = ("messages", "pending", "counts", "rates", "funnel")

    # The report's JSON, as `mailpulse report --json --from --to` prints it.
    out = io.StringIO()
    params = {name: [value] for name, value in window.items()}
    assert report(service, params, datetime.now(UTC), 10, 1, as_json=True, out=out) == 0
    printed = json.loads(out.getvalue())
    assert {k: printed[k] for k in figures} == want
    # Per mailbox provider, every figure; per bounce classification, the bounced and blocked messages.
    providers: dict[str, list[Truth]] = {}
    for t in traffic.truth.values():
        if t.status.value != "INBOUND":
            providers.setdefault(mailbox_provider(t), []).append(t)
    per_provider = {key: truth_figures(ts) for key, ts in providers.items()}
    assert {r["key"]: {k: r[k] for k in figures} for r in printed["mailbox_providers"]["rows"]} == {
        key: f for key, f in per_provider.items() if f["messages"]
    }
    assert {"google", "microsoft", "yahoo", "apple", "other"} <= set(per_provider)
    classes: dict[str, list[int]] = {}
    for t in traffic.truth.values():
        if t.status.value == "UNDELIVERED":
            tally = classes.setdefault(t.bounce_classification or "", [0, 0])
            tally[0] += 1
            tally[1] += t.blocked
    assert {
        r["key"]: [r["counts"]["bounced"], r["counts"]["blocked"]]
        for r in printed["bounce_classifications"]["rows"]
    } == classes
    assert len(classes) >= 5 and "Reputation" in classes
    stages = [step[1] for step in printed["funnel"]]
    assert stages == sorted(stages, reverse=True), "the funnel never increases"

    # The API.
    api = ApiClient(create_app(service, SecretStr(TOKEN)), {"Authorization": f"Bearer {TOKEN}"})
    summary = api.get("/api/summary", params=window).json()
    assert {k: summary[k] for k in figures} == want
    assert summary["time_to_deliver_ms"] == printed["time_to_deliver_ms"]
    funnel = api.get("/api/funnel", params=window).json()["steps"]
    assert [[s["stage"], s["messages"]] for s in funnel] == want["funnel"]

    # The dashboard, pinned to the same range: what the page shows.
    app = dashboard_app(service, SecretStr(TOKEN), refresh_s=60)
    with serving(app) as base:
        url = f"{base}/dashboard#{urlencode({'token': TOKEN, **window})}"
        dom = Dom(chromium(tmp_path / "profile", "--dump-dom", url))
    assert dom.attrs["banner"].get("hidden") is not None, dom.text.get("banner")
    assert dom.text["h-messages"] == f"{want['messages']:,}"
    for name in ("delivered", "bounced", "failed", "canceled", "opened"):
        rate = want["rates"][name]
        assert dom.text[f"h-{name}"] == f"{rate * 100:.2f}%", name
        assert json.loads(str(dom.attrs[f"h-{name}"]["data-value"])) == rate, name
        assert dom.text[f"h-{name}-n"] == f"{want['counts'][name]:,}", name
    assert [[stage, int(dom.text[f"funnel-{stage}"].replace(",", ""))] for stage, _ in want["funnel"]] == (
        want["funnel"]
    )
    assert dom.attrs["chart-funnel"].get("data-points") == "5"
    for name, count in (("spam", "spam_reported"), ("unsubscribe", "unsubscribed"), ("block", "blocked"),
                        ("deferral", "deferred")):  # fmt: skip
        rate = want["rates"][name]
        assert dom.text[f"h-{name}"] == f"{rate * 100:.{3 if name == 'spam' else 2}f}%", name
        assert json.loads(str(dom.attrs[f"h-{name}"]["data-value"])) == rate, name
        assert dom.text[f"h-{name}-n"] == f"{want['counts'][count]:,}", name
    for key, f in per_provider.items():
        if not f["messages"]:
            continue
        for name in ("spam", "block", "deferral", "delivered"):
            assert json.loads(str(dom.attrs[f"provider-{key}-{name}"]["data-value"])) == f["rates"][name]
        assert dom.text[f"provider-{key}-messages"] == f"{f['messages']:,}"
    shown = json.loads(str(dom.attrs["chart-classes"]["data-bounced"]))
    assert shown == {key: n for key, (n, _) in classes.items()}
