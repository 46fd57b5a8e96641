"""An email_events row (as clickhouse-connect returns it) back into a canonical event: what
`mailpulse dump` writes out as envelopes. Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from schemas.event import CanonicalEvent
from schemas.inbound import Attachment, InboundDetails
from storage.tables import INBOUND_COLUMNS

_ATTACHMENTS: TypeAdapter[tuple[Attachment, ...]] = TypeAdapter(tuple[Attachment, ...])
_NOT_EVENT_FIELDS = frozenset({"dedupe_key", "kafka_partition", "kafka_offset", *INBOUND_COLUMNS})


def _inbound_from_row(row: dict[str, Any]) -> InboundDetails | None:
    if not row.get("attachments"):  # '' exactly when the event carries no received mail
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


def event_from_row(row: dict[str, Any]) -> CanonicalEvent:
    fields = {k: v for k, v in row.items() if k not in _NOT_EVENT_FIELDS}
    fields["inbound"] = _inbound_from_row(row)
    fields["status"] = row["status"] or None
    fields["recipient_domain"] = row["recipient_domain"] or None
    fields["sender_domain"] = row["sender_domain"] or None
    fields["occurred_at"] = _utc(row["occurred_at"])
    fields["received_at"] = _utc(row["received_at"])
    fields["categories"] = tuple(row["categories"])
    return CanonicalEvent.model_validate(fields)
