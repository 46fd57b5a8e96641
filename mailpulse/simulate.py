"""`mailpulse simulate`: the Email API simulator on loopback until interrupted (optionally with traffic)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from mailpulse.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8090, help="port (default 8090; 0 = any free port)")
    parser.add_argument("--acceleration", type=float, default=1.0, help="API time per real time (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of outcomes and ids (default 0)")
    parser.add_argument(
        "--rate-limit", type=float, default=None, help="requests/s before 429 (default: none)"
    )
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of API requests answered 503")
    parser.add_argument(
        "--list-order",
        choices=["ascending", "descending", "shuffled"],
        default="ascending",
        help="order of listed emails and operations (default ascending: oldest first)",
    )
    parser.add_argument(
        "--webhook", action="append", default=[], metavar="URL", help="Event Streams sink (repeatable)"
    )
    parser.add_argument(
        "--sendgrid-webhook", action="append", default=[], metavar="URL", help="SendGrid Event Webhook URL"
    )
    parser.add_argument("--drop-rate", type=float, default=0.0, help="share of webhook events never sent")
    parser.add_argument("--duplicate-rate", type=float, default=0.1, help="share sent more than once")
    parser.add_argument(
        "--sendgrid-private-key", type=Path, default=None, help="PEM EC P-256 key to sign SendGrid webhooks"
    )
    parser.add_argument("--traffic", type=int, default=0, help="emails to send through the API at start")


def simulate(
    args: argparse.Namespace, settings: Settings, until_signal: Callable[[], Awaitable[asyncio.Event]]
) -> int:
    import httpx
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from schemas.signatures import public_key_b64
    from simulator.driver import Traffic, drive
    from simulator.paging import ListOrder
    from simulator.payloads import Signer, WebhookFormat
    from simulator.server import SimulatorConfig, SimulatorServer
    from simulator.webhooks import WebhookPolicy, WebhookTarget

    key = None
    if args.sendgrid_private_key:
        loaded = serialization.load_pem_private_key(args.sendgrid_private_key.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise SystemExit("--sendgrid-private-key must be an EC P-256 private key (PEM)")
        key = loaded
        public = public_key_b64(key.public_key())
        print(f"SendGrid webhooks signed; set MAILPULSE_SENDGRID_WEBHOOK_PUBLIC_KEY={public}")
    token = settings.twilio_auth_token
    secret = settings.email_api_key_secret
    targets = [WebhookTarget(url) for url in args.webhook]
    targets += [WebhookTarget(url, WebhookFormat.SENDGRID) for url in args.sendgrid_webhook]
    config = SimulatorConfig(
        host=args.host,
        port=args.port,
        acceleration=args.acceleration,
        seed=args.seed,
        rate_limit=args.rate_limit,
        error_rate=args.error_rate,
        list_order=ListOrder(args.list_order),
        credentials=(settings.email_api_key_sid, secret.get_secret_value())
        if settings.email_api_key_sid and secret
        else None,
        webhooks=tuple(targets),
        policy=WebhookPolicy(drop_rate=args.drop_rate, duplicate_rate=args.duplicate_rate),
        signer=Signer(token.get_secret_value() if token else None, key),
    )

    async def run() -> None:
        stop = await until_signal()
        async with SimulatorServer(config) as sim:
            print(f"Email API simulator on {sim.base_url} (time x{args.acceleration:g}); truth: /_sim/truth")
            if args.traffic:
                auth = httpx.BasicAuth(*config.credentials) if config.credentials else None
                async with httpx.AsyncClient(base_url=sim.base_url, auth=auth, timeout=30) as client:
                    sent = await drive(client, Traffic(args.traffic, seed=args.seed))
                print(f"sent {sent.emails} emails in {sent.requests} requests")
            await stop.wait()
            print(f"webhooks: {sim.plan_stats}; {sim.send_stats.as_dict()}")

    asyncio.run(run())
    return 0
