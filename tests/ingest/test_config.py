"""Settings -> what ingest enforces (the composition root's ingest_config)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from mailpulse.runtime import ingest_config
from mailpulse.settings import Settings
from schemas.signatures import public_key_b64


def test_nothing_configured_means_unsigned_endpoints_and_plain_addresses() -> None:
    config = ingest_config(Settings())
    assert (config.sendgrid, config.sendgrid_inbound, config.twilio) == (None, None, None)
    assert config.privacy.mode == "plain"
    assert (config.max_body_bytes, config.inbound_max_bytes) == (5 * 1024 * 1024, 20 * 1024 * 1024)
    assert config.max_elements == 10_000
    assert ingest_config(Settings(max_batch_elements=50)).max_elements == 50


def test_configured_keys_turn_signature_checks_on() -> None:
    key = public_key_b64(ec.generate_private_key(ec.SECP256R1()).public_key())
    settings = Settings(
        sendgrid_webhook_public_key=key,
        twilio_auth_token="s3cr3t-tw1l10",
        public_base_url="https://hooks.example.com",
        signature_tolerance_s=60,
        recipient_privacy="domain",
        recipient_hash_key="secret",
    )
    config = ingest_config(settings)
    assert config.sendgrid is not None and config.sendgrid.tolerance_s == 60
    assert config.sendgrid_inbound is None  # each endpoint has its own key
    assert config.twilio is not None and config.twilio.public_base_url == "https://hooks.example.com"
    assert config.twilio.auth_token == "s3cr3t-tw1l10"
    assert "s3cr3t" not in repr(settings) + repr(config)  # secrets never show in logs
    assert (config.privacy.mode, config.privacy.key) == ("domain", b"secret")
