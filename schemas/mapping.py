"""The one table that maps provider event types onto canonical (kind, status)."""

from __future__ import annotations

from schemas.event import Provider
from schemas.status import EmailStatus, EventKind

S = EventKind.STATUS

# (provider, raw type) -> (kind, status). SendGrid raw types are the Event Webhook `event` field;
# Twilio raw types are the Email resource `status` carried in a CloudEvent's `data`.
MAPPING: dict[tuple[Provider, str], tuple[EventKind, EmailStatus | None]] = {
    # SendGrid Event Webhook
    (Provider.SENDGRID, "processed"): (S, EmailStatus.QUEUED),
    (Provider.SENDGRID, "delivered"): (S, EmailStatus.DELIVERED),
    (Provider.SENDGRID, "open"): (S, EmailStatus.OPENED),
    # `bounce` covers type=bounce and type=blocked: the receiver refused this message.
    (Provider.SENDGRID, "bounce"): (S, EmailStatus.UNDELIVERED),
    (Provider.SENDGRID, "blocked"): (S, EmailStatus.UNDELIVERED),
    # `dropped`: SendGrid never attempted delivery (suppression, invalid address): a send failure.
    (Provider.SENDGRID, "dropped"): (S, EmailStatus.FAILED),
    (Provider.SENDGRID, "deferred"): (EventKind.DEFERRED, None),
    (Provider.SENDGRID, "click"): (EventKind.CLICK, None),
    (Provider.SENDGRID, "spamreport"): (EventKind.SPAM_REPORT, None),
    (Provider.SENDGRID, "unsubscribe"): (EventKind.UNSUBSCRIBE, None),
    (Provider.SENDGRID, "group_unsubscribe"): (EventKind.GROUP_UNSUBSCRIBE, None),
    (Provider.SENDGRID, "group_resubscribe"): (EventKind.GROUP_RESUBSCRIBE, None),
    (Provider.SENDGRID, "account_status_change"): (EventKind.ACCOUNT_STATUS_CHANGE, None),
    # Twilio Email API: the resource status is already canonical.
    **{(Provider.TWILIO, status.value): (S, status) for status in EmailStatus},
}


def classify(provider: Provider, raw_type: str) -> tuple[EventKind, EmailStatus | None]:
    """Kind and status of a provider event type; unknown types are kept as UNKNOWN, never dropped."""
    return MAPPING.get((provider, raw_type), (EventKind.UNKNOWN, None))
