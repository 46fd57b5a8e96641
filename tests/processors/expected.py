"""The designed precedence, written out by hand (DESIGN.md), independent of schemas.status.

The happy path climbs SCHEDULED < QUEUED < SENT < DELIVERED < OPENED; cancel/failure lose to SENT (they lost
a race); a bounce after delivery wins over DELIVERED; an open proves delivery; INBOUND is its own lifecycle.
"""

from __future__ import annotations

from schemas.status import EmailStatus as ES

STATUS_ORDER: list[ES] = [
    ES.SCHEDULED,
    ES.QUEUED,
    ES.CANCELED,
    ES.FAILED,
    ES.SENT,
    ES.DELIVERED,
    ES.UNDELIVERED,
    ES.OPENED,
    ES.INBOUND,
]
RANK = {status: i for i, status in enumerate(STATUS_ORDER)}
FAILURES = {ES.UNDELIVERED, ES.FAILED, ES.CANCELED}
