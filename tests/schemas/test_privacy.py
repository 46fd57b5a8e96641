"""Recipient privacy modes (pure), and the settings that choose them."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from mailpulse.settings import Settings
from schemas.event import CanonicalEvent, derived_event_id
from schemas.privacy import PrivacyMode, RecipientPrivacy
from schemas.sendgrid import parse_sendgrid_event
from schemas.sendgrid_inbound import InboundPost, parse_inbound
from tests.ingest.mail import inbound_fields

KEY = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
XID = "W86EgYT6SQKk0lRflfLRsA"


def sendgrid(email: str, **extra: object) -> CanonicalEvent:
    raw = {"email": email, "timestamp": 1_763_900_000, "event": "bounce", "smtp-id": f"<{XID}@ismtpd-0001>"}
    return parse_sendgrid_event({**raw, **extra}, NOW)


def keyed(address: str) -> str:
    return hmac.new(KEY, address.lower().encode(), hashlib.sha256).hexdigest()


def test_plain_keeps_everything() -> None:
    event = sendgrid("Ana@Example.com", reason="550 <ana@example.com> unknown")
    assert RecipientPrivacy().event(event) is event
    assert RecipientPrivacy().scrub({"email": "ana@example.com"}) == {"email": "ana@example.com"}


def test_hashed_replaces_addresses_with_a_keyed_hash_and_keeps_grouping() -> None:
    privacy = RecipientPrivacy("hashed", KEY)
    event = sendgrid(
        "Ana@Example.com",
        reason="550 5.1.1 <ana@example.com>: Recipient address rejected",
        url="https://shop.example/u?e=ana%40example.com",
        note="for ana@example.com",
    )
    stored = privacy.event(event)
    assert stored.recipient == keyed("ana@example.com") and len(stored.recipient) == 64
    assert stored.recipient_domain == "example.com"
    assert stored.message_id == f"{XID}:{keyed('ana@example.com')}"
    assert stored.reason == f"550 5.1.1 <{keyed('ana@example.com')}>: Recipient address rejected"
    assert stored.url == f"https://shop.example/u?e={keyed('ana@example.com')}"
    assert stored.custom_args == {"note": f"for {keyed('ana@example.com')}"}
    # A derived event id follows the new message id: nothing keeps the address in reversible form.
    assert stored.event_id == derived_event_id(
        stored.provider, stored.message_id, "bounce", stored.occurred_at
    )
    # Every event of the message still shares one key; another recipient of the send does not.
    assert privacy.event(sendgrid("ana@example.com")).message_id == stored.message_id
    assert privacy.event(sendgrid("bo@example.com")).message_id != stored.message_id
    assert "ana" not in stored.model_dump_json()


def test_hashes_depend_on_the_key() -> None:
    one = RecipientPrivacy("hashed", KEY).address("ana@example.com")
    assert RecipientPrivacy("hashed", b"another key").address("ana@example.com") != one
    assert one != hashlib.sha256(b"ana@example.com").hexdigest()  # not a plain, guessable hash


def test_domain_keeps_only_the_domain_but_messages_stay_apart() -> None:
    privacy = RecipientPrivacy("domain", KEY)
    ana, bo = privacy.event(sendgrid("ana@example.com")), privacy.event(sendgrid("bo@example.com"))
    assert (ana.recipient, ana.recipient_domain) == ("@example.com", "example.com")
    assert ana.message_id == f"{XID}:{keyed('ana@example.com')}"
    assert ana.message_id != bo.message_id  # two recipients of one send on one domain: two messages
    assert (
        privacy.text("write to ana@example.com or bo%40mail.example")
        == "write to @example.com or @mail.example"
    )


def test_inbound_recipients_and_sender_follow_the_mode() -> None:
    event = parse_inbound(InboundPost(inbound_fields()), NOW)
    hashed = RecipientPrivacy("hashed", KEY).event(event)
    assert hashed.inbound is not None and event.inbound is not None
    assert hashed.inbound.recipients == tuple(keyed(r) for r in event.inbound.recipients)
    assert hashed.recipient == keyed("support@parse.example")
    assert (hashed.sender, hashed.sender_domain) == (keyed("ana.silva@gmail.com"), "gmail.com")
    assert hashed.message_id == event.message_id  # a Message-ID carries no recipient
    domain = RecipientPrivacy("domain", KEY).event(event)
    assert domain.inbound is not None
    assert domain.inbound.recipients == ("@parse.example", "@shop.example", "@other.example")
    assert (domain.recipient, domain.sender) == ("@parse.example", "@gmail.com")


def test_dead_letter_payloads_are_scrubbed() -> None:
    privacy = RecipientPrivacy("domain", KEY)
    payload = {"email": "ana@example.com", "list": ["x", {"to": "Bo <bo@mail.example>"}], "n": 3}
    assert privacy.scrub(payload) == {
        "email": "@example.com",
        "list": ["x", {"to": "Bo <@mail.example>"}],
        "n": 3,
    }


def test_a_mode_that_hashes_needs_a_key() -> None:
    modes: tuple[PrivacyMode, ...] = ("hashed", "domain")
    for mode in modes:
        with pytest.raises(ValueError, match="needs a recipient hash key"):
            RecipientPrivacy(mode)
        with pytest.raises(ValidationError, match="needs MAILPULSE_RECIPIENT_HASH_KEY"):
            Settings(recipient_privacy=mode)
    assert Settings(recipient_privacy="hashed", recipient_hash_key="k" * 32).recipient_privacy == "hashed"


def test_settings_refuse_unusable_signature_config() -> None:
    with pytest.raises(ValidationError, match="base64 DER"):
        Settings(sendgrid_webhook_public_key="not a key")
    with pytest.raises(ValidationError, match="http"):
        Settings(public_base_url="hooks.example.com")
