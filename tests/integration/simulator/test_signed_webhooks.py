"""The simulator signs its webhooks as Twilio and SendGrid do, with the functions ingest verifies with:
the real ingest app (over loopback HTTP, publishing to the real broker) accepts every one of them, and
refuses them when the keys do not match."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from mailpulse.demo import ingest_server
from mailpulse.settings import Settings
from mailpulse.topics import ensure_topics
from schemas.signatures import public_key_b64
from simulator.driver import Traffic, drive
from simulator.payloads import Signer, WebhookFormat
from simulator.sender import SendStats
from simulator.server import SimulatorConfig, SimulatorServer
from simulator.webhooks import WebhookPolicy, WebhookTarget
from tests.simulator.lifecycles import FAST

pytestmark = pytest.mark.kafka
TOKEN = "twilio-auth-token-for-tests"


def deliver(settings: Settings, signer: Signer) -> SendStats:
    async def main() -> SendStats:
        assert settings.kafka_bootstrap is not None
        await ensure_topics(settings.kafka_bootstrap, settings.topics, settings.partitions)
        async with ingest_server(settings, settings.kafka_bootstrap) as ingest:
            targets = (
                WebhookTarget(f"{ingest}/webhooks/twilio/events"),
                WebhookTarget(f"{ingest}/webhooks/sendgrid/events", WebhookFormat.SENDGRID),
            )
            policy = WebhookPolicy(max_delay_s=0.2, max_attempts=2, retry_base_s=0.01)
            config = SimulatorConfig(
                acceleration=400.0, outcomes=FAST, webhooks=targets, policy=policy, signer=signer
            )
            async with SimulatorServer(config) as sim, httpx.AsyncClient(base_url=sim.base_url) as client:
                await drive(client, Traffic(60, max_recipients=20, schedule_ahead_s=(30.0, 60.0), seed=4))
                await sim.wait_quiet(30)
                assert sim.plan_stats.copies > 150
                return sim.send_stats

    return asyncio.run(asyncio.wait_for(main(), 60))


def test_signed_webhooks_are_accepted_and_forged_ones_refused(settings: Settings) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signed = settings.model_copy(
        update={
            "ingest_port": 0,
            "twilio_auth_token": SecretStr(TOKEN),
            "sendgrid_webhook_public_key": public_key_b64(key.public_key()),
        }
    )
    sent = deliver(signed, Signer(TOKEN, key))
    assert sent.discarded == sent.given_up == 0
    assert sent.accepted_events == sent.delivered_events > 0
    forged = deliver(signed, Signer("another-token", ec.generate_private_key(ec.SECP256R1())))
    assert forged.delivered_events == 0 and forged.discarded > 0, "403: not retried, as Event Streams does"
