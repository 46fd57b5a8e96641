"""The canonical event every source maps into, and its Kafka envelope (v2: the event's fields at top
level after ``"v":2`` and the dedupe key, so ClickHouse parses a record value as one row)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal, Self

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from schemas.inbound import InboundDetails
from schemas.status import FAILURE_STATUSES, EmailStatus, EventKind

SCHEMA_VERSION = 2


class Source(StrEnum):
    WEBHOOK = "webhook"
    POLLER = "poller"
    INBOUND = "inbound"


class Provider(StrEnum):
    TWILIO = "twilio"
    SENDGRID = "sendgrid"


# Email API tag rules (docs/providers.md): at most 10 pairs, key <= 128, value <= 256, [A-Za-z0-9._~-] only.
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
    """``CanonicalEvent.dedupe_key``, computed."""
    return dedupe_key_from(
        e.message_id, e.occurred_at, e.kind, e.status, e.raw_type, e.attempt, e.url, e.reason, e.bounce_type,
        e.machine_open,
    )  # fmt: skip


def dedupe_key_from(
    message_id: str,
    occurred_at: datetime,
    kind: EventKind,
    status: EmailStatus | None,
    raw_type: str,
    attempt: int | None,
    url: str | None,
    reason: str | None,
    bounce_type: str | None,
    machine_open: bool | None,
) -> str:
    """The dedupe key from the fields it reads: the one implementation, for an event model and for
    ingest's fast path, which writes envelopes without building one."""
    if status is None:
        parts = f"{kind.value}\x1f{raw_type}\x1f{attempt or ''}\x1f{url or ''}"
    elif status in FAILURE_STATUSES:
        parts = f"{status.value}\x1f{reason or ''}\x1f{bounce_type or ''}\x1f"
    elif status is EmailStatus.OPENED:
        parts = f"{status.value}\x1f{bool(machine_open)}\x1f\x1f"
    else:
        parts = f"{status.value}\x1f\x1f\x1f"
    text = f"{message_id}\x1f{occurred_at.isoformat()}\x1f{parts}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class EnvelopeV1(BaseModel):
    """What ingest published before v2 (value of a status-topic record): read only, to upgrade records
    an older ingest left in Kafka."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    event: CanonicalEvent


class Envelope(BaseModel):
    """v2, what travels on the status topic (value), keyed by ``event.message_id``. On the wire it is
    flat: ``{"v":2,"dedupe_key":...,<the event's fields>}`` (``to_json``); reading nests the fields
    back into ``event`` and checks the key against the event's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[2] = 2
    dedupe_key: str
    event: CanonicalEvent

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        if isinstance(data, dict) and "event" not in data:
            fields = dict(data)
            return {"v": fields.pop("v", None), "dedupe_key": fields.pop("dedupe_key", None), "event": fields}
        return data

    @model_validator(mode="after")
    def _key_matches(self) -> Envelope:
        if self.dedupe_key != self.event.dedupe_key:
            raise ValueError("dedupe_key is not the event's")
        return self

    @classmethod
    def of(cls, event: CanonicalEvent) -> Envelope:
        return cls(dedupe_key=event.dedupe_key, event=event)

    def to_json(self) -> bytes:
        """The wire bytes, by pydantic (handles any text, lone surrogates included); ``envelope_json``
        writes the same bytes faster."""
        event = self.event.model_dump_json().encode()
        return b'{"v":2,"dedupe_key":"' + self.dedupe_key.encode() + b'",' + event[1:]


_EVENT_FIELDS = tuple(CanonicalEvent.model_fields)


def envelope_json(event: CanonicalEvent) -> bytes:
    """``Envelope.of(event).to_json()``, built by orjson from the event's fields at about half the
    cost (tests/ingest/test_encode.py compares them)."""
    fields = event.__dict__  # holds the cached dedupe_key too: only the model's fields go out
    body: dict[str, Any] = {"v": SCHEMA_VERSION, "dedupe_key": event.dedupe_key}
    for name in _EVENT_FIELDS:
        body[name] = fields[name]
    if event.inbound is not None:
        body["inbound"] = event.inbound.model_dump(mode="json")
    try:
        # OPT_UTC_Z: "Z" for UTC, as pydantic writes it.
        return orjson.dumps(body, option=orjson.OPT_UTC_Z)
    except orjson.JSONEncodeError:  # text orjson refuses (lone surrogates): pydantic's encoding
        return Envelope.of(event).to_json()


def upgrade_v1(value: bytes) -> bytes:
    """A v1 envelope's bytes as v2 bytes (records an older ingest left in Kafka). ValueError when
    ``value`` is not a valid v1 envelope."""
    return envelope_json(EnvelopeV1.model_validate_json(value).event)
