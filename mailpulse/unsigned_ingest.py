"""Signed by default: which webhook endpoints would take unsigned events, and the rule that lets ingest
start."""

from __future__ import annotations

import logging

from ingest.app import IngestConfig
from ingest.paths import SENDGRID_EVENTS, SENDGRID_INBOUND, TWILIO_EVENTS
from mailpulse.settings import Settings

log = logging.getLogger(__name__)

# Each webhook endpoint and the setting that makes it verify signatures.
SIGNATURE_SETTINGS = {
    SENDGRID_EVENTS: "MAILPULSE_SENDGRID_WEBHOOK_PUBLIC_KEY",
    SENDGRID_INBOUND: "MAILPULSE_SENDGRID_INBOUND_PUBLIC_KEY",
    TWILIO_EVENTS: "MAILPULSE_TWILIO_AUTH_TOKEN",
}
ALLOW_UNSIGNED = "MAILPULSE_ALLOW_UNSIGNED"


def unsigned_endpoints(config: IngestConfig) -> list[str]:
    """The endpoints that accept events without a signature: those whose verifier is not configured."""
    verifiers = {
        SENDGRID_EVENTS: config.sendgrid,
        SENDGRID_INBOUND: config.sendgrid_inbound,
        TWILIO_EVENTS: config.twilio,
    }
    return [path for path, verifier in verifiers.items() if verifier is None]


def unsigned_refusal(settings: Settings, config: IngestConfig) -> str | None:
    """Why ingest must not start, or None. The rule: every endpoint verifies signatures, unless
    MAILPULSE_ALLOW_UNSIGNED=true lets the ones without a key accept unsigned events."""
    unsigned = unsigned_endpoints(config)
    if not unsigned or settings.allow_unsigned:
        return None
    missing = "".join(f"\n  {path}: set {SIGNATURE_SETTINGS[path]}" for path in unsigned)
    return (
        "ingest refuses to start: these endpoints would accept unsigned events, which anyone who can reach "
        f"them could forge:{missing}\nor set {ALLOW_UNSIGNED}=true to accept unsigned events on them "
        "(local trials and networks you trust only)"
    )


def warn_unsigned(config: IngestConfig) -> None:
    """Every start that accepts unsigned events says so, naming the endpoints."""
    unsigned = unsigned_endpoints(config)
    if unsigned:
        log.warning(
            "ingest accepts unsigned events on %s (%s=true); set %s to verify them",
            ", ".join(unsigned),
            ALLOW_UNSIGNED,
            ", ".join(SIGNATURE_SETTINGS[path] for path in unsigned),
        )
