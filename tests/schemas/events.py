"""Canonical events for the engine tests: a hypothesis strategy over a handful of messages (statuses,
human and machine opens, failures with reasons, ties on occurred_at) and a fixed sample."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st
from pydantic import TypeAdapter

from schemas.event import CanonicalEvent, Provider, Source, domain_of
from schemas.inbound import Attachment, InboundDetails
from schemas.sendgrid import parse_sendgrid_event
from schemas.status import FAILURE_STATUSES as FAILURES
from schemas.status import EmailStatus, EventKind
from schemas.twilio import parse_cloud_event

ES = EmailStatus
FIXTURES = Path(__file__).parent.parent / "fixtures"

BASE = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
OPERATION_ID = "comms_operation_01jbq8x1z0a2b4c6d8e0f2g4h6"


@dataclass(frozen=True)
class Msg:
    message_id: str
    provider: Provider
    recipient: str
    sender: str | None


MESSAGES = [
    Msg("Lg3kSvpTS1qvc3V2hSzUMQ:jane.doe@example.com", Provider.SENDGRID, "jane.doe@example.com", None),
    Msg("9QmWq0lAQkWUvU3zDZr4dg:carol@example.net", Provider.SENDGRID, "carol@example.net", None),
    Msg(
        "comms_email_01jbq8x2m4f6e9h3k5n7p9r1s3",
        Provider.TWILIO,
        "ann@example.org",
        "billing@shop.example.com",
    ),
    Msg(
        "comms_email_01jbq8y7t5v3w1x9z7b5d3f1h9",
        Provider.TWILIO,
        "bob@example.org",
        "billing@shop.example.com",
    ),
]
MESSAGE_IDS = [m.message_id for m in MESSAGES]

SENDGRID_RAW = {
    ES.QUEUED: ["processed"],
    ES.DELIVERED: ["delivered"],
    ES.OPENED: ["open"],
    ES.UNDELIVERED: ["bounce", "blocked"],
    ES.FAILED: ["dropped"],
}
SENDGRID_OTHER_KINDS = [
    EventKind.DEFERRED,
    EventKind.CLICK,
    EventKind.SPAM_REPORT,
    EventKind.UNSUBSCRIBE,
    EventKind.GROUP_UNSUBSCRIBE,
    EventKind.UNKNOWN,
]


# --------------------------------------------------------------------------- strategies


@st.composite
def canonical_events(draw: st.DrawFn) -> CanonicalEvent:
    """One realistic event of one of a handful of messages (or of an operation)."""
    second = draw(st.integers(0, 4))  # a small range of whole seconds: ties are common
    fields: dict[str, Any] = {"event_id": "placeholder", "source": draw(st.sampled_from(list(Source)))}
    if draw(st.integers(0, 9)) == 0:
        occurred = BASE + timedelta(seconds=second)
        fields |= {
            "message_id": OPERATION_ID,
            "operation_id": OPERATION_ID,
            "kind": EventKind.OPERATION,
            "raw_type": "com.twilio.comms-api.operation.completed",
            "provider": Provider.TWILIO,
        }
    else:
        msg = draw(st.sampled_from(MESSAGES))
        fields |= {
            "message_id": msg.message_id,
            "provider": msg.provider,
            "recipient": msg.recipient,
            "recipient_domain": domain_of(msg.recipient),
            "tags": draw(
                st.sampled_from([{}, {"campaign": "spring-2026"}, {"campaign": "x", "tenant": "acme"}])
            ),
        }
        if msg.provider is Provider.SENDGRID:
            occurred = BASE + timedelta(seconds=second)
            fields["categories"] = draw(st.sampled_from([(), ("transactional",), ("newsletter", "weekly")]))
            if draw(st.booleans()):
                status = draw(st.sampled_from(list(SENDGRID_RAW)))
                fields |= {"kind": EventKind.STATUS, "status": status}
                fields["raw_type"] = draw(st.sampled_from(SENDGRID_RAW[status]))
                if status is ES.OPENED:
                    fields["machine_open"] = draw(st.booleans())
            else:
                kind = draw(st.sampled_from(SENDGRID_OTHER_KINDS))
                fields |= {
                    "kind": kind,
                    "raw_type": "future_event" if kind is EventKind.UNKNOWN else kind.value,
                }
                if kind is EventKind.DEFERRED:
                    fields["attempt"] = draw(st.integers(1, 3))
                    fields["reason"] = "451 4.7.650 rate limited"
                if kind is EventKind.CLICK:
                    fields["url"] = draw(st.sampled_from(["https://a.example/x", "https://b.example/y"]))
        else:
            occurred = BASE + timedelta(seconds=second, milliseconds=draw(st.sampled_from([0, 0, 250])))
            status = draw(st.sampled_from(list(EmailStatus)))
            fields |= {"kind": EventKind.STATUS, "status": status, "raw_type": status.value}
            if draw(st.booleans()):
                fields |= {"sender": msg.sender, "sender_domain": domain_of(msg.sender)}
            if draw(st.booleans()):
                fields["operation_id"] = OPERATION_ID
        status_now = fields.get("status")
        if status_now in FAILURES:
            fields["reason"] = draw(st.sampled_from(["550 5.1.1 no such user", "552 5.2.2 mailbox full"]))
            if fields["raw_type"] in ("bounce", "blocked"):
                fields["bounce_type"] = fields["raw_type"]
                fields["smtp_status"] = "5.1.1" if fields["raw_type"] == "bounce" else None
    fields["occurred_at"] = occurred
    fields["received_at"] = occurred + timedelta(seconds=draw(st.integers(0, 90)))
    return CanonicalEvent.model_validate(fields)


def _with_ids(events: list[CanonicalEvent]) -> list[CanonicalEvent]:
    return [e.model_copy(update={"event_id": f"ev-{i:04d}"}) for i, e in enumerate(events)]


# A set of distinct events: no two share a dedupe key. Events sharing a key are copies of one event
# (same message, time and every field the merge reads); copies are generated by the duplication tests.
event_sets = st.lists(canonical_events(), min_size=1, max_size=30, unique_by=lambda e: e.dedupe_key).map(
    _with_ids
)


def semantic_copy(event: CanonicalEvent, n: int = 1) -> CanonicalEvent:
    """The same transition delivered again: new id, later ingest, maybe another source."""
    other_source = Source.POLLER if event.source is not Source.POLLER else Source.WEBHOOK
    return CanonicalEvent.model_validate(
        {
            **event.model_dump(),
            "event_id": f"{event.event_id}-retry{n}",
            "received_at": event.received_at + timedelta(minutes=5 * n),
            "source": other_source,
        }
    )


def sample_events() -> list[CanonicalEvent]:
    """The provider fixtures' events (SendGrid and Twilio), as ingest parses them."""
    received = datetime(2026, 11, 23, 10, 0, 5, 123000, tzinfo=UTC)
    sendgrid = orjson.loads((FIXTURES / "sendgrid_events.json").read_bytes())
    twilio = orjson.loads((FIXTURES / "twilio_cloudevents.json").read_bytes())
    return [
        *(parse_sendgrid_event(raw, received) for raw in sendgrid),
        *(parse_cloud_event(raw, received) for raw in twilio),
    ]


_ATTACHMENTS: TypeAdapter[tuple[Attachment, ...]] = TypeAdapter(tuple[Attachment, ...])


def inbound_values(inbound: InboundDetails | None) -> tuple[Any, ...]:
    """email_events' inbound columns for ``inbound``; ``attachments`` is '' exactly when there is none."""
    if inbound is None:
        return ([], None, None, None, None, "")
    i = inbound
    attachments = _ATTACHMENTS.dump_json(i.attachments).decode()
    return (list(i.recipients), i.subject, i.spam_score, i.spf, i.dkim, attachments)


def old_event_row(e: CanonicalEvent, partition: int, offset: int) -> tuple[Any, ...]:
    """An email_events row (EVENT_COLUMNS order) as the processor wrote it before envelope v2."""
    return (
        e.message_id, e.dedupe_key, e.event_id, e.provider_message_id, e.operation_id, e.kind.value,
        e.status.value if e.status else "", e.raw_type, e.occurred_at, e.received_at, e.source.value,
        e.provider.value, e.recipient, e.recipient_domain or "", e.sender, e.sender_domain or "",
        dict(e.tags), dict(e.custom_args), list(e.categories), e.reason, e.smtp_status, e.bounce_type,
        e.bounce_classification, e.attempt, e.machine_open, e.url, partition, offset,
        *inbound_values(e.inbound),
    )  # fmt: skip
