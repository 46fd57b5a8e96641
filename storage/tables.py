"""What live code knows of the stored tables: column orders, and the status bits of ``message_minute``.

The tables themselves are created by the numbered migrations (``storage.migrations``), which never read
this module: a migration is frozen when released, while this module follows the current tables. Tests
check the two agree (tests/storage/test_migrations.py, tests/integration/storage/test_migrations.py).
"""

from __future__ import annotations

# SendGrid's bounce classifications (Event Webhook ``bounce_classification``), in this order: a message
# with several takes the first.
CLASSIFICATIONS: tuple[str, ...] = (
    "Invalid Address", "Technical Failure", "Content", "Reputation", "Frequency or Volume Too High",
    "Mailbox Unavailable", "Unclassified",
)  # fmt: skip
CLASSIFICATION_PREFIX = "BOUNCE:"
# Bit i of message_minute.statuses is STATUS_BITS[i]: stored data, append only. Migration 6's bits, then
# BLOCKED and one per bounce classification (migration 13).
STATUS_BITS: tuple[str, ...] = (
    "SCHEDULED", "QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "OPENED", "FAILED", "CANCELED", "INBOUND",
    "DEFERRED", "CLICK", "SPAMREPORT", "UNSUBSCRIBE", "GROUP_UNSUBSCRIBE", "GROUP_RESUBSCRIBE",
    "ACCOUNT_STATUS_CHANGE", "OPERATION", "UNKNOWN", "BLOCKED",
    *(CLASSIFICATION_PREFIX + c for c in CLASSIFICATIONS),
)  # fmt: skip

_STATUS_TIME_COLUMNS = (
    "scheduled_at", "queued_at", "sent_at", "delivered_at", "undelivered_at",
    "opened_at", "failed_at", "canceled_at", "inbound_at",
)  # fmt: skip

# Received mail (CanonicalEvent.inbound): migration 1 ALTERs them into tables created without them.
# ``attachments`` holds a JSON array of attachment metadata, '' when the event is not a received mail.
_INBOUND_COLUMN_TYPES: tuple[tuple[str, str], ...] = (
    ("inbound_recipients", "Array(String)"),
    ("subject", "Nullable(String)"),
    ("spam_score", "Nullable(Float64)"),
    ("spf", "LowCardinality(Nullable(String))"),
    ("dkim", "Nullable(String)"),
    ("attachments", "String"),
)
INBOUND_COLUMNS: tuple[str, ...] = tuple(name for name, _ in _INBOUND_COLUMN_TYPES)

EVENT_COLUMNS: tuple[str, ...] = (
    "message_id", "dedupe_key", "event_id", "provider_message_id", "operation_id", "kind", "status",
    "raw_type", "occurred_at", "received_at", "source", "provider", "recipient", "recipient_domain",
    "sender", "sender_domain", "tags", "custom_args", "categories", "reason", "smtp_status", "bounce_type",
    "bounce_classification", "attempt", "machine_open", "url", "kafka_partition", "kafka_offset",
    *INBOUND_COLUMNS,
)  # fmt: skip

TRANSITION_COLUMNS: tuple[str, ...] = (
    "message_id", "occurred_at", "dedupe_key", "event_id", "status", "previous_status", "current_status",
    "late", "provider", "source", "kafka_partition", "kafka_offset",
)  # fmt: skip

STATE_COLUMNS: tuple[str, ...] = (
    "message_id", "provider", "status", "operation_id", "recipient", "recipient_domain", "sender",
    "sender_domain", "tags", *_STATUS_TIME_COLUMNS, "open_count", "machine_open_count", "click_count",
    "deferred_count", "event_count", "first_event_at", "last_event_at", "failure_reason", "bounce_type",
    "version",
)  # fmt: skip
