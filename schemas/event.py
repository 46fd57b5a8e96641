"""The canonical event (schema v1) every source maps into, and its Kafka envelope."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from schemas.inbound import InboundDetails
from schemas.status import FAILURE_STATUSES, EmailStatus, EventKind

SCHEMA_VERSION = 1


class Source(StrEnum):
    WEBHOOK = "webhook"
    POLLER = "poller"
    INBOUND = "inbound"


class Provider(StrEnum):
    TWILIO = "twilio"
    SENDGRID = "sendgrid"


# Email API tag rules (FACTS.md): at most 10 pairs, key <= 128, value <= 256, [A-Za-z0-9._~-] only.
MAX_TAGS = 10
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
TAG_CHARS = re.compile(r"[A-Za-z0-9._~-]+")  # fullmatch: "$" would accept a trailing newline


def tag_problems(tags: dict[str, str]) -> list[str]:
    """Every way ``tags`` breaks the Email API's tag rules (empty when valid)."""
    problems = []
    if len(tags) > MAX_TAGS:
        problems.append(f"at most {MAX_TAGS} tags allowed, got {len(tags)}")
    for key, value in tags.items():
        if not 0 < len(key) <= MAX_TAG_KEY:
            problems.append(f"tag key {key[:40]!r} must be 1..{MAX_TAG_KEY} characters")
        elif not TAG_CHARS.fullmatch(key):
            problems.append(f"tag key {key[:40]!r} may only contain letters, digits, '.', '_', '-', '~'")
        if not 0 < len(value) <= MAX_TAG_VALUE:
            problems.append(f"tag {key[:40]!r} value must be 1..{MAX_TAG_VALUE} characters")
        elif not TAG_CHARS.fullmatch(value):
            problems.append(f"tag {key[:40]!r} value may only contain letters, digits, '.', '_', '-', '~'")
    return problems


def _valid_tags(tags: dict[str, str]) -> dict[str, str]:
    problems = tag_problems(tags)
    if problems:
        raise ValueError("; ".join(problems))
    return tags


# DateTime64 stores 1900..2299; an email event outside 1970..2200 is not a real event time.
MIN_YEAR, MAX_YEAR = 1970, 2200
UINT32_MAX = 2**32 - 1


def stored_utc(value: datetime) -> datetime:
    """``value`` as events hold it: UTC, milliseconds, within MIN_YEAR..MAX_YEAR (else ValueError)."""
    # Milliseconds are the precision ClickHouse keeps (DateTime64(3)); truncating here makes an event
    # rebuilt from ClickHouse identical to the one first seen, dedupe key included.
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted past datetime's range: not a ValueError by itself
        utc = None
    # Anything ClickHouse cannot store would fail every load of its partition (a poison pill).
    if utc is None or not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise ValueError(f"timestamp must lie between {MIN_YEAR} and {MAX_YEAR}")
    sub_ms = utc.microsecond % 1000
    return utc.replace(microsecond=utc.microsecond - sub_ms) if sub_ms else utc


UtcDatetime = Annotated[datetime, AfterValidator(stored_utc)]
Tags = Annotated[dict[str, str], AfterValidator(_valid_tags)]


def domain_of(address: str | None) -> str | None:
    """Lower-cased domain of an e-mail address, None when there is none."""
    if not address or "@" not in address:
        return None
    return address.rsplit("@", 1)[1].strip().strip(">").lower() or None


def derived_event_id(provider: Provider, message_id: str, raw_type: str, occurred_at: datetime) -> str:
    """A stable id for events whose provider gives none (poller, inbound)."""
    return _digest(provider.value, message_id, raw_type, occurred_at.isoformat())


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


class CanonicalEvent(BaseModel):
    """One email event, whatever its source. Immutable; ``dedupe_key`` is its semantic identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1, max_length=256)
    message_id: str = Field(min_length=1, max_length=512)
    provider_message_id: str | None = None
    operation_id: str | None = None
    kind: EventKind
    status: EmailStatus | None = None
    raw_type: str = Field(min_length=1, max_length=128)
    occurred_at: UtcDatetime
    received_at: UtcDatetime
    source: Source
    provider: Provider
    recipient: str | None = None
    recipient_domain: str | None = None
    sender: str | None = None
    sender_domain: str | None = None
    tags: Tags = Field(default_factory=dict)
    custom_args: dict[str, str] = Field(default_factory=dict)  # provider extras that are not valid tags
    categories: tuple[str, ...] = ()
    reason: str | None = None
    smtp_status: str | None = None
    bounce_type: str | None = None
    bounce_classification: str | None = None
    attempt: int | None = Field(default=None, ge=0, le=UINT32_MAX)
    machine_open: bool | None = None
    url: str | None = None
    inbound: InboundDetails | None = None  # received mail only (source inbound): envelope and attachments

    @model_validator(mode="after")
    def _status_matches_kind(self) -> CanonicalEvent:
        if (self.kind is EventKind.STATUS) != (self.status is not None):
            raise ValueError("status is required for kind 'status' and forbidden otherwise")
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("dedupe_key", None)  # computed from fields the update may change
        return copy

    @cached_property  # read several times per event on the processor's hot path (a blake2b each)
    def dedupe_key(self) -> str:
        """Semantic identity: the same transition from any source or retry has the same key.

        Excludes event_id (SendGrid may resend one event under a new sg_event_id), source and
        received_at (webhook and poller report the same transition). Includes every field the merge
        reads that can differ between genuinely different events (machine vs human open, the reason
        of a failure, the raw type of a non-status event), so events sharing a key are
        interchangeable and the state never depends on which copy arrived first.
        """
        return dedupe_key_of(self)


def dedupe_key_of(e: CanonicalEvent) -> str:
    """``CanonicalEvent.dedupe_key``, computed (the processor's decoder stores it with the fields:
    functools.cached_property takes a lock on every first read on Python 3.11)."""
    status = e.status
    if status is None:
        parts = f"{e.kind.value}\x1f{e.raw_type}\x1f{e.attempt or ''}\x1f{e.url or ''}"
    elif status in FAILURE_STATUSES:
        parts = f"{status.value}\x1f{e.reason or ''}\x1f{e.bounce_type or ''}\x1f"
    elif status is EmailStatus.OPENED:
        parts = f"{status.value}\x1f{bool(e.machine_open)}\x1f\x1f"
    else:
        parts = f"{status.value}\x1f\x1f\x1f"
    text = f"{e.message_id}\x1f{e.occurred_at.isoformat()}\x1f{parts}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class Envelope(BaseModel):
    """What travels on the status topic (value), keyed by ``event.message_id``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    event: CanonicalEvent
