"""Canonical events and message states <-> ClickHouse rows (column order of schemas.tables). Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from processors.batch import Transition
from processors.state import MessageState
from schemas.event import CanonicalEvent
from schemas.inbound import Attachment, InboundDetails
from schemas.status import EmailStatus, EventKind
from schemas.tables import INBOUND_COLUMNS, STATE_COLUMNS

Row = tuple[Any, ...]


def event_row(event: CanonicalEvent, partition: int, offset: int) -> Row:
    e = event
    return (
        e.message_id, e.dedupe_key, e.event_id, e.provider_message_id, e.operation_id, e.kind.value,
        e.status.value if e.status else "", e.raw_type, e.occurred_at, e.received_at, e.source.value,
        e.provider.value, e.recipient, e.recipient_domain or "", e.sender, e.sender_domain or "",
        dict(e.tags), dict(e.custom_args), list(e.categories), e.reason, e.smtp_status, e.bounce_type,
        e.bounce_classification, e.attempt, e.machine_open, e.url, partition, offset,
        *_inbound_values(e.inbound),
    )  # fmt: skip


_ATTACHMENTS = TypeAdapter(tuple[Attachment, ...])


def _inbound_values(inbound: InboundDetails | None) -> Row:
    """The inbound columns; ``attachments`` is '' exactly when the event carries no received mail."""
    if inbound is None:
        return ([], None, None, None, None, "")
    i = inbound
    attachments = _ATTACHMENTS.dump_json(i.attachments).decode()
    return (list(i.recipients), i.subject, i.spam_score, i.spf, i.dkim, attachments)


def _inbound_from_row(row: dict[str, Any]) -> InboundDetails | None:
    if not row.get("attachments"):
        return None
    return InboundDetails(
        recipients=tuple(row["inbound_recipients"]),
        subject=row["subject"],
        spam_score=row["spam_score"],
        spf=row["spf"],
        dkim=row["dkim"],
        attachments=_ATTACHMENTS.validate_json(row["attachments"]),
    )


def _utc(value: datetime) -> datetime:
    # chDB hands DateTime64(3, 'UTC') back naive; the column is UTC by definition.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_NOT_EVENT_FIELDS = frozenset({"dedupe_key", "kafka_partition", "kafka_offset", *INBOUND_COLUMNS})


def event_from_row(row: dict[str, Any]) -> CanonicalEvent:
    """Rebuild a canonical event from an email_events row (for state rebuild after restart)."""
    fields = {k: v for k, v in row.items() if k not in _NOT_EVENT_FIELDS}
    fields["inbound"] = _inbound_from_row(row)
    fields["status"] = row["status"] or None
    fields["recipient_domain"] = row["recipient_domain"] or None
    fields["sender_domain"] = row["sender_domain"] or None
    fields["occurred_at"] = _utc(row["occurred_at"])
    fields["received_at"] = _utc(row["received_at"])
    fields["categories"] = tuple(row["categories"])
    return CanonicalEvent.model_validate(fields)


def state_row(state: MessageState) -> Row:
    s = state
    d = s.describing
    assert d is not None and s.first_event_at is not None and s.last_event_at is not None
    failure = s.failure
    return (
        s.message_id, d.provider.value, s.status.value if s.status else "", d.operation_id, d.recipient,
        d.recipient_domain or "", d.sender, d.sender_domain or "", d.tag_dict,
        *s.status_times(),
        s.count(EmailStatus.OPENED), s.machine_opens, s.count(EventKind.CLICK), s.count(EventKind.DEFERRED),
        s.event_count, s.first_event_at, s.last_event_at,
        failure.reason if failure else None, failure.bounce_type if failure else None,
        s.event_count,
    )  # fmt: skip


# status_times() follows EmailStatus order, which must be the order of the *_at columns.
assert tuple(f"{s.value.lower()}_at" for s in EmailStatus) == STATE_COLUMNS[9:18]


def transition_row(t: Transition) -> Row:
    e = t.item.event
    assert e.status is not None
    return (
        e.message_id, e.occurred_at, e.dedupe_key, e.event_id, e.status.value,
        t.previous.value if t.previous else "", t.current.value, t.item.late, e.provider.value,
        e.source.value, t.item.partition, t.item.offset,
    )  # fmt: skip
