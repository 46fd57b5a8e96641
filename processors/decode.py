"""Kafka record value -> canonical event, or the reason it cannot be one. Pure.

Two decoders, one answer. ``Envelope.model_validate_json`` (pydantic) is the model of record; a
msgspec decoder takes the common case faster (12.4 us -> 7.2 us an event, dedupe key included). It
only accepts envelopes it can vouch for: every string and number constraint of ``CanonicalEvent``
checked by msgspec, timestamps in the one RFC 3339 shape ingest writes (plus numeric offsets), valid
tags, no received mail (``inbound``), ``status`` present exactly for status events. Anything else,
valid or not, goes to pydantic, so what is rejected, and why, stays exactly pydantic's. A hypothesis
differential test (tests/processors/test_decode.py) holds the two to equal events, dedupe key included.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from pydantic import ValidationError

from schemas.event import (
    UINT32_MAX,
    CanonicalEvent,
    Envelope,
    Provider,
    Source,
    dedupe_key_of,
    stored_utc,
)
from schemas.status import EmailStatus, EventKind
from schemas.tags import are_tags


class Undecodable(ValueError):
    pass


def decode(value: bytes | None) -> CanonicalEvent:
    if value is None:
        raise Undecodable("record has no value")
    event = decode_fast(value)
    return event if event is not None else decode_model(value)


def decode_model(value: bytes) -> CanonicalEvent:
    """The model of record: pydantic's answer, and its reasons when it refuses."""
    try:
        return Envelope.model_validate_json(value).event
    except ValidationError as exc:
        # Without the input: it can be the whole value, which the dead letter already carries.
        problems = exc.errors(include_url=False, include_input=False)[:5]
        reason = f"not a v1 envelope: {exc.error_count()} problems: {problems}"
    # Raised outside the handler, so without the ValidationError as its context: that one's traceback
    # holds the caller's frames, and a caller keeping the Undecodable would keep them in a cycle.
    raise Undecodable(reason)


def _text(low: int, high: int) -> Any:
    return Annotated[str, msgspec.Meta(min_length=low, max_length=high)]


class _Event(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """CanonicalEvent's fields and constraints as msgspec checks them (same names, same defaults)."""

    event_id: _text(1, 256)  # type: ignore[valid-type]
    message_id: _text(1, 512)  # type: ignore[valid-type]
    provider_message_id: str | None = None
    operation_id: str | None = None
    kind: EventKind
    status: EmailStatus | None = None
    raw_type: _text(1, 128)  # type: ignore[valid-type]
    occurred_at: str  # parsed below, only in the shapes both decoders read alike
    received_at: str
    source: Source
    provider: Provider
    recipient: str | None = None
    recipient_domain: str | None = None
    sender: str | None = None
    sender_domain: str | None = None
    tags: dict[str, str] = {}
    custom_args: dict[str, str] = {}
    categories: tuple[str, ...] = ()
    reason: str | None = None
    smtp_status: str | None = None
    bounce_type: str | None = None
    bounce_classification: str | None = None
    attempt: Annotated[int, msgspec.Meta(ge=0, le=UINT32_MAX)] | None = None
    machine_open: bool | None = None
    url: str | None = None
    inbound: None = None  # received mail (nested models) is rare: pydantic decodes it


class _Envelope(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    schema_version: Literal[1] = 1
    event: _Event


_DECODER = msgspec.json.Decoder(_Envelope)
# YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM|-HH:MM), ASCII digits only: the shape pydantic and
# datetime.fromisoformat read identically. Other shapes pydantic may accept (unix times, spaces,
# lower-case t/z, more digits) take the pydantic path.
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_FIELDS_SET = frozenset(CanonicalEvent.model_fields)
_set = object.__setattr__  # CanonicalEvent is frozen; this is how pydantic's model_construct fills one


# Timestamps repeat (a SendGrid post's events share received_at): parsed ones are remembered.
_PARSED: dict[str, datetime | None] = {}
_PARSED_MAX = 4096


def _utc(text: str) -> datetime | None:
    """schemas.event.stored_utc of the timestamp, None when the shape or year is one pydantic must judge."""
    try:
        return _PARSED[text]
    except KeyError:
        pass
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    parsed = _PARSED[text] = _parse_utc(text)
    return parsed


def _parse_utc(text: str) -> datetime | None:
    if _TIMESTAMP.fullmatch(text) is None:
        return None
    try:
        return stored_utc(datetime.fromisoformat(text))
    except ValueError:  # month 13, hour 24, offset 24:00, a year out of bounds...
        return None


def decode_fast(value: bytes) -> CanonicalEvent | None:
    """The event, or None when the msgspec path cannot vouch for the answer (pydantic decides)."""
    try:
        event = _DECODER.decode(value).event
    except (msgspec.MsgspecError, ValueError):  # ValueError: invalid UTF-8
        return None
    occurred_at, received_at = _utc(event.occurred_at), _utc(event.received_at)
    if occurred_at is None or received_at is None:
        return None
    if (event.kind is EventKind.STATUS) != (event.status is not None) or not are_tags(event.tags):
        return None
    fields = msgspec.structs.asdict(event)
    fields["occurred_at"], fields["received_at"] = occurred_at, received_at
    out = object.__new__(CanonicalEvent)
    _set(out, "__dict__", fields)
    _set(out, "__pydantic_fields_set__", set(_FIELDS_SET))
    _set(out, "__pydantic_extra__", None)
    _set(out, "__pydantic_private__", None)
    fields["dedupe_key"] = dedupe_key_of(out)  # where cached_property would keep it, without its lock
    return out
