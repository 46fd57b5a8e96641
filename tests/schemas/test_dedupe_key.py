"""dedupe_key is stored (email_events' sort key, transitions): its value must never change between
releases, or a replay after an upgrade would add rows. The reference is the key as first specified:
blake2b-128 over message id, occurred_at.isoformat() and four parts, joined by \\x1f."""

from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.event import CanonicalEvent
from schemas.status import FAILURE_STATUSES, EmailStatus
from tests.schemas.events import canonical_events

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_key(e: CanonicalEvent) -> str:
    if e.status is None:
        parts = (e.kind.value, e.raw_type, str(e.attempt or ""), e.url or "")
    elif e.status in FAILURE_STATUSES:
        parts = (e.status.value, e.reason or "", e.bounce_type or "", "")
    elif e.status is EmailStatus.OPENED:
        parts = (e.status.value, str(bool(e.machine_open)), "", "")
    else:
        parts = (e.status.value, "", "", "")
    text = "\x1f".join((e.message_id, e.occurred_at.isoformat(), *parts))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@PROPS
@given(
    canonical_events(),
    st.none() | st.integers(0, 2**32 - 1),
    st.none() | st.text(max_size=5),
    st.none() | st.text(max_size=5),
)
def test_dedupe_key_keeps_its_value(
    event: CanonicalEvent, attempt: int | None, url: str | None, reason: str | None
) -> None:
    event = event.model_copy(update={"attempt": attempt, "url": url, "reason": reason})
    assert event.dedupe_key == reference_key(event)
