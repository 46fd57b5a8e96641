"""The ingest endpoints over HTTP with a real publisher on the real (Tansu) broker: signatures, Inbound
Parse, content types, clear errors, privacy. Nothing refused is ever published."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ingest.app import IngestConfig
from ingest.paths import SENDGRID_EVENTS, SENDGRID_INBOUND, TWILIO_EVENTS
from mailpulse.settings import Settings
from schemas.privacy import RecipientPrivacy
from schemas.signatures import (
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    SendGridVerifier,
    TwilioVerifier,
    sign_sendgrid,
    sign_twilio,
    with_body_sha256,
)
from tests.ingest.mail import MESSAGE_ID, attachment_files, inbound_fields, multipart
from tests.integration.ingest.ingest_app import BASE_URL, TOKEN, ingest_client, published
from tests.webhook_events import cloud_event, sendgrid_event

pytestmark = [pytest.mark.kafka]

JSON = {"content-type": "application/json"}


@pytest.fixture
def one_partition(settings: Settings) -> Settings:
    """One partition: records come back in publish order, so a sentinel proves nothing came before."""
    return settings.model_copy(update={"partitions": 1})


def signed_config(key: ec.EllipticCurvePrivateKey, **extra: Any) -> IngestConfig:
    verifier = SendGridVerifier(key.public_key(), 300)
    return IngestConfig(sendgrid=verifier, sendgrid_inbound=verifier, twilio=TwilioVerifier(TOKEN), **extra)


def sendgrid_headers(key: ec.EllipticCurvePrivateKey, body: bytes, at: float | None = None) -> dict[str, str]:
    ts = str(int(time.time() if at is None else at))
    return {**JSON, SENDGRID_SIGNATURE_HEADER: sign_sendgrid(key, ts, body), SENDGRID_TIMESTAMP_HEADER: ts}


def event_ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["event_id"] for r in records]


def test_sendgrid_signatures(one_partition: Settings, sendgrid_key: ec.EllipticCurvePrivateKey) -> None:
    settings = one_partition
    forged_key = ec.generate_private_key(ec.SECP256R1())

    async def scenario() -> list[dict[str, Any]]:
        async with ingest_client(settings, signed_config(sendgrid_key)) as client:
            body = (
                orjson.dumps([sendgrid_event("processed", 0, 1)]) + b"\r\n"
            )  # bytes as sent, not re-encoded
            answers = {
                "missing": await client.post(SENDGRID_EVENTS, content=body, headers=JSON),
                "forged": await client.post(
                    SENDGRID_EVENTS, content=body, headers=sendgrid_headers(forged_key, body)
                ),
                "stale": await client.post(
                    SENDGRID_EVENTS,
                    content=body,
                    headers=sendgrid_headers(sendgrid_key, body, time.time() - 400),
                ),
                "tampered": await client.post(
                    SENDGRID_EVENTS,
                    content=body.replace(b"processed", b"delivered"),
                    headers=sendgrid_headers(sendgrid_key, body),
                ),
            }
            assert answers["missing"].status_code == 401
            assert "missing X-Twilio-Email-Event-Webhook-Signature" in answers["missing"].json()["error"]
            assert answers["missing"].headers["www-authenticate"]
            for name in ("forged", "stale", "tampered"):
                assert answers[name].status_code == 403, name
            assert "outside ±300 s" in answers["stale"].json()["error"]
            assert answers["forged"].json()["error"] == "signature does not match the body and timestamp"
            valid = await client.post(
                SENDGRID_EVENTS, content=body, headers=sendgrid_headers(sendgrid_key, body)
            )
            assert valid.status_code == 200 and valid.json()["accepted"] == 1
        return await published(settings, 1)

    records = asyncio.run(scenario())
    assert event_ids(records) == ["ZXZlbnQ1"]  # only the valid request's event, nothing before it


def test_twilio_signatures(one_partition: Settings) -> None:
    settings = one_partition
    body = orjson.dumps([cloud_event("DELIVERED", 7, 1)])
    url = with_body_sha256(f"{BASE_URL}{TWILIO_EVENTS}", body)
    path = url.removeprefix(BASE_URL)

    async def scenario() -> list[dict[str, Any]]:
        config = IngestConfig(twilio=TwilioVerifier(TOKEN))
        async with ingest_client(settings, config) as client:

            async def post(target: str, signature: str | None, content: bytes = body) -> httpx.Response:
                headers = {**JSON, **({TWILIO_SIGNATURE_HEADER: signature} if signature else {})}
                return await client.post(target, content=content, headers=headers)

            missing = await post(path, None)
            assert missing.status_code == 401 and "X-Twilio-Signature" in missing.json()["error"]
            forged = await post(path, sign_twilio(url, "f" * 32))
            assert forged.status_code == 403
            tampered = await post(path, sign_twilio(url, TOKEN), body.replace(b"DELIVERED", b"OPENED"))
            assert tampered.json() == {"error": "bodySHA256 does not match the body"}
            no_hash = await post(TWILIO_EVENTS, sign_twilio(f"{BASE_URL}{TWILIO_EVENTS}", TOKEN))
            assert no_hash.status_code == 403 and "bodySHA256" in no_hash.json()["error"]
            with_port = await post(path, sign_twilio(url.replace("ingest.test", "ingest.test:80"), TOKEN))
            assert with_port.status_code == 200, with_port.text
        # Behind a proxy: Twilio signed the public URL, ingest sees its own.
        public = "https://hooks.example.com/mailpulse"
        proxied = IngestConfig(twilio=TwilioVerifier(TOKEN, public))
        async with ingest_client(settings, proxied) as client:
            signed = with_body_sha256(f"{public}{TWILIO_EVENTS}", body)
            answer = await client.post(
                path, content=body, headers={**JSON, TWILIO_SIGNATURE_HEADER: sign_twilio(signed, TOKEN)}
            )
            assert answer.status_code == 200, answer.text
        return await published(settings, 2)

    assert event_ids(asyncio.run(scenario())) == ["EZ" + "0" * 31 + "1"] * 2


def test_inbound_parse_with_allowed_disallowed_and_inline_attachments(settings: Settings) -> None:
    body, content_type = multipart(inbound_fields(), attachment_files())

    async def scenario() -> list[dict[str, Any]]:
        async with ingest_client(settings) as client:
            answer = await client.post(SENDGRID_INBOUND, content=body, headers={"content-type": content_type})
            assert answer.status_code == 200, answer.text
            assert answer.json() == {
                "accepted": 1,
                "message_id": f"inbound:{MESSAGE_ID}",
                "attachments": 3,
                "rejected_attachments": 1,
            }
        return await published(settings, 1)

    [event] = asyncio.run(scenario())  # envelope v2: the event's fields at top level
    assert (event["status"], event["source"], event["provider"]) == ("INBOUND", "inbound", "sendgrid")
    assert (event["sender"], event["recipient"]) == ("ana.silva@gmail.com", "support@parse.example")
    inbound = event["inbound"]
    assert (inbound["subject"], inbound["spam_score"], inbound["spf"]) == (
        "Invoice and photos",
        0.011,
        "pass",
    )
    assert inbound["recipients"] == ["support@parse.example", "bo@shop.example", "carol@other.example"]
    assert [(a["filename"], a["size"], a["content_id"], a["rejected"]) for a in inbound["attachments"]] == [
        ("invoice.PDF", 3000, None, False),
        ("setup.exe", 1200, None, True),
        ("logo.png", 800, "ii_139db99fdb3c4dc7", False),
    ]
    assert "'.exe' is not supported" in inbound["attachments"][1]["reason"]
    stored = orjson.dumps(event).decode()  # metadata only: never the bytes nor the bodies
    assert "A" * 100 not in stored and "B" * 100 not in stored and "invoice attached" not in stored


def test_inbound_refusals_are_only_for_mail_that_must_never_be_stored(
    one_partition: Settings, sendgrid_key: ec.EllipticCurvePrivateKey
) -> None:
    settings = one_partition
    body, content_type = multipart(inbound_fields(), attachment_files())
    multipart_header = {"content-type": content_type}

    async def scenario() -> list[dict[str, Any]]:
        async with ingest_client(settings, signed_config(sendgrid_key)) as client:

            async def post(content: bytes, headers: dict[str, str]) -> httpx.Response:
                return await client.post(SENDGRID_INBOUND, content=content, headers=headers)

            refusals = {
                415: await post(b"{}", JSON),
                401: await post(body, multipart_header),
                403: await post(body, {**sendgrid_headers(sendgrid_key, body + b"x"), **multipart_header}),
            }
            for status, answer in refusals.items():
                assert answer.status_code == status and answer.json()["error"], answer.text
            ok = await post(body, {**sendgrid_headers(sendgrid_key, body), **multipart_header})
            assert ok.status_code == 200, ok.text
        async with ingest_client(settings) as client:
            no_boundary = await client.post(
                SENDGRID_INBOUND, content=body, headers={"content-type": "multipart/form-data"}
            )
            assert no_boundary.status_code == 400 and "boundary" in no_boundary.json()["error"]
            broken = await client.post(
                SENDGRID_INBOUND, content=body[: len(body) // 2], headers=multipart_header
            )
            assert broken.status_code == 400, broken.text
            not_mail, ctype = multipart({"text": "hello"})
            answer = await client.post(SENDGRID_INBOUND, content=not_mail, headers={"content-type": ctype})
            assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "headers"
            declared = await client.post(
                SENDGRID_INBOUND,
                content=b"x",
                headers={**multipart_header, "content-length": str(21 * 1024 * 1024)},
            )
            assert declared.status_code == 413 and "larger than 20971520 bytes" in declared.json()["error"]
        return await published(settings, 1)

    [only] = asyncio.run(scenario())
    assert only["message_id"] == f"inbound:{MESSAGE_ID}"


def test_every_problem_is_listed_and_bad_elements_go_to_dead_letters(settings: Settings) -> None:
    batch = [
        {"event": "delivered", "timestamp": "yesterday", "email": 5},
        sendgrid_event("delivered", 30, 3),
        "not an object",
        {**sendgrid_event("open", 40, 4), "timestamp": 10},
    ]

    async def scenario() -> list[dict[str, Any]]:
        async with ingest_client(settings) as client:
            answer = await client.post(SENDGRID_EVENTS, json=batch)
            assert answer.status_code == 200
            body = answer.json()
            assert (body["accepted"], body["rejected"]) == (1, 3)
            assert {(e["index"], e["field"]) for e in body["errors"]} == {
                (0, "email"),
                (0, "timestamp"),
                (0, "sg_message_id"),
                (2, "(event)"),
                (3, "timestamp"),
            }
            assert all(e["message"] for e in body["errors"])
            wrong_type = await client.post(
                SENDGRID_EVENTS, content=b"[]", headers={"content-type": "text/plain"}
            )
            assert wrong_type.status_code == 415
            assert wrong_type.json()["error"] == "content type must be application/json, got 'text/plain'"
            bad_twilio = await client.post(TWILIO_EVENTS, json=[{"specversion": "2"}])
            assert bad_twilio.status_code == 422
            assert {e["field"] for e in bad_twilio.json()["errors"]} >= {"specversion", "id", "data"}
        return await published(settings, 4, settings.deadletter_topic)

    dead = asyncio.run(scenario())
    assert sorted(d["index"] for d in dead) == [0, 0, 2, 3]
    assert all(d["problems"] and d["stage"] == "ingest" for d in dead)


def test_a_bad_element_too_large_for_kafka_is_dead_lettered_cut_to_fit(settings: Settings) -> None:
    """A 2 MB bad element fits the 5 MB body limit but not a 1 MB Kafka record: its dead letter keeps
    the start of it, so the good events of the same post are accepted (a dead letter that could not be
    sent made ingest answer 503 to every retry of the post)."""
    bad = {**sendgrid_event("open", 40, 4), "timestamp": "x" * 2_000_000}

    async def scenario() -> list[dict[str, Any]]:
        async with ingest_client(settings) as client:
            answer = await client.post(SENDGRID_EVENTS, json=[sendgrid_event("delivered", 30, 3), bad])
            assert answer.status_code == 200
            body = answer.json()
            assert (body["accepted"], body["rejected"]) == (1, 1)
            assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "timestamp")]
        return await published(settings, 1, settings.deadletter_topic)

    [dead] = asyncio.run(scenario())
    assert (dead["index"], dead["payload_cut"]) == (1, True)
    assert dead["payload_bytes"] == len(orjson.dumps(bad))
    assert dead["payload"].startswith('{"email":') and len(dead["payload"]) < 1024 * 1024


def test_a_valid_event_too_large_for_kafka_is_refused_alone(settings: Settings) -> None:
    """A valid event whose envelope passes the producer's 1 MB max_request_size can never be published:
    it is refused as an element (dead-lettered, cut), and its neighbours are accepted. Before, every
    retry of the post got 503. Alone in a post, it gets 422, which no provider retries."""
    huge = {**sendgrid_event("bounce", 40, 4), "reason": "550 " + "x" * 1_100_000}

    async def scenario() -> list[dict[str, Any]]:
        async with ingest_client(settings) as client:
            answer = await client.post(SENDGRID_EVENTS, json=[sendgrid_event("delivered", 30, 3), huge])
            assert answer.status_code == 200
            body = answer.json()
            assert (body["accepted"], body["rejected"]) == (1, 1)
            [problem] = body["errors"]
            assert (problem["index"], problem["field"]) == (1, "(event)")
            assert "of a Kafka record" in problem["message"]
            alone = await client.post(SENDGRID_EVENTS, json=[huge])
            assert alone.status_code == 422 and alone.json()["rejected"] == 1
        return await published(settings, 2, settings.deadletter_topic)

    dead = asyncio.run(scenario())
    assert sorted((d["index"], d["payload_cut"]) for d in dead) == [(0, True), (1, True)]
    assert all(d["payload"].startswith('{"email":') for d in dead)


@pytest.mark.parametrize("mode", ["plain", "hashed", "domain"])
def test_privacy_is_applied_before_publishing(settings: Settings, mode: str) -> None:
    privacy = RecipientPrivacy(mode, None if mode == "plain" else b"k" * 32)  # type: ignore[arg-type]
    body, content_type = multipart(inbound_fields(), attachment_files())

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with ingest_client(settings, IngestConfig(privacy=privacy)) as client:
            good = sendgrid_event("delivered", 30, 3)
            assert (
                await client.post(SENDGRID_EVENTS, json=[good, {"email": "ana@example.com"}])
            ).status_code == 200
            answer = await client.post(SENDGRID_INBOUND, content=body, headers={"content-type": content_type})
            assert answer.status_code == 200
        events = await published(settings, 2)
        return events, await published(settings, 1, settings.deadletter_topic)

    events, [dead] = asyncio.run(scenario())
    by_source = {e["source"]: e for e in events}
    webhook, inbound = by_source["webhook"], by_source["inbound"]
    stored = {
        "plain": "ana@example.com",
        "hashed": privacy.address("ana@example.com"),
        "domain": "@example.com",
    }
    assert webhook["recipient"] == stored[mode] and webhook["recipient_domain"] == "example.com"
    identity = privacy.identity("ana@example.com")  # plain: the address; else its keyed hash
    assert identity == (
        "ana@example.com"
        if mode == "plain"
        else privacy.address("ana@example.com")
        if mode == "hashed"
        else identity
    )
    assert webhook["message_id"] == f"W86EgYT6SQKk0lRflfLRsA:{identity}"
    assert (
        inbound["inbound"]["recipients"][0]
        == {
            "plain": "support@parse.example",
            "hashed": privacy.address("support@parse.example"),
            "domain": "@parse.example",
        }[mode]
    )
    assert dead["payload"]["email"] == stored[mode]
    if mode != "plain":
        everything = orjson.dumps([events, dead]).decode()
        assert "ana@example.com" not in everything and "support@parse.example" not in everything
