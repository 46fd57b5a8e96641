"""Email and operation statuses, event kinds, the precedence that makes state merging order-independent,
and the one definition of each status set."""

from __future__ import annotations

from enum import StrEnum


class EmailStatus(StrEnum):
    """Per-email statuses of the Twilio Email API (docs/providers.md)."""

    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    UNDELIVERED = "UNDELIVERED"
    OPENED = "OPENED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    INBOUND = "INBOUND"


class OperationStatus(StrEnum):
    """Statuses of an Email API send operation (docs/providers.md)."""

    SCHEDULED = "SCHEDULED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"


class EventKind(StrEnum):
    """What an event says. Only STATUS events move a message's status; the rest are kept as facts."""

    STATUS = "status"
    DEFERRED = "deferred"
    CLICK = "click"
    SPAM_REPORT = "spamreport"
    UNSUBSCRIBE = "unsubscribe"
    GROUP_UNSUBSCRIBE = "group_unsubscribe"
    GROUP_RESUBSCRIBE = "group_resubscribe"
    ACCOUNT_STATUS_CHANGE = "account_status_change"
    OPERATION = "operation"
    UNKNOWN = "unknown"


# A total order, so that "current status = highest precedence present" is a max: commutative,
# associative and idempotent. Why this order:
# - the happy path climbs SCHEDULED < QUEUED < SENT < DELIVERED < OPENED;
# - CANCELED and FAILED end a message that never went out, so they beat SCHEDULED/QUEUED but lose to
#   SENT: a provider that reports SENT (or later) has proven the cancel/failure lost a race;
# - UNDELIVERED beats DELIVERED: an asynchronous bounce after acceptance is the final truth;
# - OPENED beats UNDELIVERED: an open proves the mail reached the mailbox;
# - INBOUND is its own lifecycle (received mail) and never mixes with outbound statuses.
PRECEDENCE: dict[EmailStatus, int] = {
    EmailStatus.SCHEDULED: 10,
    EmailStatus.QUEUED: 20,
    EmailStatus.CANCELED: 30,
    EmailStatus.FAILED: 40,
    EmailStatus.SENT: 50,
    EmailStatus.DELIVERED: 60,
    EmailStatus.UNDELIVERED: 70,
    EmailStatus.OPENED: 80,
    EmailStatus.INBOUND: 90,
}

FAILURE_STATUSES: frozenset[EmailStatus] = frozenset(
    {EmailStatus.UNDELIVERED, EmailStatus.FAILED, EmailStatus.CANCELED}
)
# Statuses after which the provider will report nothing more about delivery (opens may still come).
TERMINAL_STATUSES: frozenset[EmailStatus] = FAILURE_STATUSES | {
    EmailStatus.DELIVERED,
    EmailStatus.OPENED,
    EmailStatus.INBOUND,
}
# Statuses after which nothing about the email changes, so the poller stops re-polling it. DELIVERED is
# terminal but not settled: opens and late bounces follow it.
SETTLED_STATUSES: frozenset[EmailStatus] = TERMINAL_STATUSES - {EmailStatus.DELIVERED}
# An operation in one of these has listed every email it will send.
TERMINAL_OPERATION_STATUSES: frozenset[OperationStatus] = frozenset(
    {OperationStatus.COMPLETED, OperationStatus.CANCELED}
)


def precedence(status: EmailStatus) -> int:
    return PRECEDENCE[status]


def highest(statuses: set[EmailStatus] | frozenset[EmailStatus]) -> EmailStatus | None:
    """The current status of a message that has seen ``statuses``; None when it has seen none."""
    return max(statuses, key=precedence, default=None)
