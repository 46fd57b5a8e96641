"""Envelope records built straight from webhook JSON, for the events that need nothing more. Pure.

The canonical path (``schemas.sendgrid`` / ``schemas.twilio`` -> ``CanonicalEvent`` -> ``encode``)
validates through two or three pydantic models per event and lists every problem, the costliest step of a
post (docs/performance.md#hot-path-choices). Nearly every event a provider posts is plainly valid: here
the same constraints are checked with exact type tests and the envelope is written in ``CanonicalEvent``'s
field order. Whatever this module is not sure of (a type pydantic might coerce, an alias spelling, a bound
crossed, a time format other than RFC 3339 UTC) gives None, and the caller takes the canonical path for
that element: the same bytes, or the same problems. tests/ingest/test_fastpath.py compares both paths byte
for byte over generated input. Recipient privacy other than plain uses the canonical path.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, TypeGuard

import orjson

from adapters.publisher import Record
from schemas.event import (
    SCHEMA_VERSION,
    UINT32_MAX,
    Provider,
    dedupe_key_from,
    derived_event_id,
    domain_of,
    stored_utc,
)
from schemas.mapping import MAPPING
from schemas.sendgrid import MAX_TIMESTAMP, MIN_TIMESTAMP, split_custom_args, x_message_id
from schemas.status import EventKind
from schemas.tags import are_tags
from schemas.twilio import OPERATION_TYPE_PREFIX

_UNKNOWN = (EventKind.UNKNOWN, None)
_SENDGRID_KINDS = {raw: kind for (provider, raw), kind in MAPPING.items() if provider is Provider.SENDGRID}
_TWILIO_KINDS = {raw: kind for (provider, raw), kind in MAPPING.items() if provider is Provider.TWILIO}
# RFC 3339 in UTC with "Z", at most microseconds: what Twilio sends, and a form pydantic and
# ``datetime.fromisoformat`` read alike. Offsets and other forms take the canonical path.
_UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z")
# Bounded memos, emptied when full: a CloudEvent's ``time`` is mostly its ``data.updatedAt``; a
# message's SendGrid events share their ids; a burst shares its seconds.
_MEMO_MAX = 4096
_times: dict[str, datetime] = {}
_xids: dict[tuple[str | None, str | None], str] = {}
_moments: dict[int, datetime] = {}
_DIGITS = re.compile(r"0|[1-9][0-9]{0,9}")  # SendGrid sends ``attempt`` as a string ("1")


def received_stamp(now: datetime) -> datetime:
    """``now`` (UTC) as an event's ``received_at`` holds it: milliseconds, as ``schemas.event`` keeps."""
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def _envelope(event: dict[str, Any]) -> bytes | None:
    """``schemas.event.envelope_json`` of the event these fields make (in its field order)."""
    key = dedupe_key_from(
        event["message_id"], event["occurred_at"], event["kind"], event["status"], event["raw_type"],
        event["attempt"], event["url"], event["reason"], event["bounce_type"], event["machine_open"],
    )  # fmt: skip
    try:
        return orjson.dumps({"v": SCHEMA_VERSION, "dedupe_key": key, **event}, option=orjson.OPT_UTC_Z)
    except orjson.JSONEncodeError:  # text orjson refuses (lone surrogates): the canonical path
        return None


def sendgrid_record(raw: Any, received_at: datetime) -> Record | None:
    """The record ``parse_sendgrid_event`` + ``encode`` give for ``raw``, or None: take that path."""
    if type(raw) is not dict or "smtp_id" in raw:  # the model also reads smtp-id by its field name
        return None
    get = raw.get
    event, email, timestamp = get("event"), get("email"), get("timestamp")
    if type(event) is not str or not 0 < len(event) <= 128:
        return None
    if type(email) is not str or not 3 <= len(email) <= 512:
        return None
    if type(timestamp) is not int or not MIN_TIMESTAMP <= timestamp <= MAX_TIMESTAMP:
        return None
    sg_event_id, sg_message_id, smtp_id = get("sg_event_id"), get("sg_message_id"), get("smtp-id")
    reason, response, smtp_status = get("reason"), get("response"), get("status")
    bounce_type, classification, url = get("type"), get("bounce_classification"), get("url")
    for text in (sg_event_id, sg_message_id, smtp_id, reason, response, smtp_status, bounce_type,
                 classification, url):  # fmt: skip
        if text is not None and type(text) is not str:
            return None
    category = get("category")
    if category is None:
        categories: tuple[str, ...] = ()
    elif type(category) is str:
        categories = (category,)
    elif type(category) is list and all(type(c) is str for c in category):
        categories = tuple(category)
    else:
        return None
    attempt, machine_open = get("attempt"), get("sg_machine_open")
    if type(attempt) is str and _DIGITS.fullmatch(attempt):
        attempt = int(attempt)  # what pydantic makes of plain digits
    if attempt is not None and (type(attempt) is not int or not 0 <= attempt <= UINT32_MAX):
        return None
    if machine_open is not None and type(machine_open) is not bool:
        return None
    ids = (sg_message_id, smtp_id)
    xid = _xids.get(ids)
    if xid is None:
        xid = x_message_id(sg_message_id, smtp_id)
        if xid is None:
            return None
        if len(_xids) >= _MEMO_MAX:
            _xids.clear()
        _xids[ids] = xid
    recipient = email.strip().lower()
    message_id = f"{xid}:{recipient}"
    if len(message_id) > 512:
        return None
    occurred_at = _moments.get(timestamp)
    if occurred_at is None:
        if len(_moments) >= _MEMO_MAX:
            _moments.clear()
        occurred_at = _moments[timestamp] = datetime.fromtimestamp(timestamp, UTC)
    raw_type = "blocked" if event == "bounce" and bounce_type == "blocked" else event
    kind, status = _SENDGRID_KINDS.get(raw_type, _UNKNOWN)
    event_id = sg_event_id or derived_event_id(Provider.SENDGRID, message_id, raw_type, occurred_at)
    if len(event_id) > 256:
        return None
    tags, custom_args = split_custom_args(raw)
    value = _envelope(
        {
            "event_id": event_id,
            "message_id": message_id,
            "provider_message_id": sg_message_id or None,
            "operation_id": None,
            "kind": kind,
            "status": status,
            "raw_type": raw_type,
            "occurred_at": occurred_at,
            "received_at": received_at,
            "source": "webhook",
            "provider": "sendgrid",
            "recipient": recipient,
            "recipient_domain": domain_of(recipient),
            "sender": None,
            "sender_domain": None,
            "tags": tags,
            "custom_args": custom_args,
            "categories": categories,
            "reason": reason or response,
            "smtp_status": smtp_status,
            "bounce_type": bounce_type if event == "bounce" else None,
            "bounce_classification": classification,
            "attempt": attempt,
            "machine_open": machine_open,
            "url": url,
            "inbound": None,
        }
    )
    return None if value is None else (message_id.encode(), value)


def _utc_time(value: object) -> datetime | None:
    """An RFC 3339 UTC time as ``schemas.event.UtcDatetime`` stores it (milliseconds), else None."""
    if type(value) is not str:
        return None
    parsed = _times.get(value)
    if parsed is not None:
        return parsed
    if not _UTC_TIME.fullmatch(value):
        return None
    try:
        parsed = stored_utc(datetime.fromisoformat(value))
    except ValueError:  # no such day or hour, or a year out of bounds: the canonical path says so
        return None
    if len(_times) >= _MEMO_MAX:
        _times.clear()
    _times[value] = parsed
    return parsed


def _address(value: object) -> str | None:
    """A Twilio address (a string, or an object with ``address``) lower-cased, else None."""
    if type(value) is str:
        return value.strip().lower()
    if type(value) is dict:
        address, name = value.get("address"), value.get("name")
        if type(address) is str and 3 <= len(address) <= 512 and (name is None or type(name) is str):
            return address.strip().lower()
    return None


def _id(value: object, longest: int) -> TypeGuard[str]:
    return type(value) is str and 0 < len(value) <= longest


def twilio_record(raw: Any, received_at: datetime) -> Record | None:
    """The record ``parse_cloud_event`` + ``encode`` give for ``raw`` (an email status CloudEvent),
    or None: take that path (operation events always do)."""
    if type(raw) is not dict:
        return None
    get = raw.get
    spec, ce_type, source, data = get("specversion"), get("type"), get("source"), get("data")
    if type(spec) is not str or not spec.startswith("1.") or not _id(get("id"), 256):
        return None
    if type(source) is not str or not source or not _id(ce_type, 128):
        return None
    if ce_type.startswith(OPERATION_TYPE_PREFIX) or type(data) is not dict:
        return None
    ce_time = get("time")
    if ce_time is not None and (ce_time := _utc_time(ce_time)) is None:
        return None
    # The Email resource model also reads these by their field names.
    if "updated_at" in data or "sender" in data or "operation_id" in data:
        return None
    email_id, status, updated_at = data.get("id"), data.get("status"), data.get("updatedAt")
    if not _id(email_id, 256) or not _id(status, 64):
        return None
    if updated_at is not None and (updated_at := _utc_time(updated_at)) is None:
        return None
    occurred_at = updated_at or ce_time
    operation_id, tags, to = data.get("operationId"), data.get("tags", {}), data.get("to", [])
    if occurred_at is None or (operation_id is not None and type(operation_id) is not str):
        return None
    if type(tags) is not dict or type(to) is not list:
        return None
    if not all(type(k) is str and type(v) is str for k, v in tags.items()) or not are_tags(tags):
        return None
    recipients = [_address(a) for a in to]
    if None in recipients:
        return None
    sender = data.get("from")
    if sender is not None and (sender := _address(sender)) is None:
        return None
    recipient = recipients[0] if recipients else None
    kind, email_status = _TWILIO_KINDS.get(status, _UNKNOWN)
    value = _envelope(
        {
            "event_id": raw["id"],
            "message_id": email_id,
            "provider_message_id": None,
            "operation_id": operation_id,
            "kind": kind,
            "status": email_status,
            "raw_type": status,
            "occurred_at": occurred_at,
            "received_at": received_at,
            "source": "webhook",
            "provider": "twilio",
            "recipient": recipient,
            "recipient_domain": domain_of(recipient),
            "sender": sender,
            "sender_domain": domain_of(sender),
            "tags": tags,
            "custom_args": {},
            "categories": (),
            "reason": None,
            "smtp_status": None,
            "bounce_type": None,
            "bounce_classification": None,
            "attempt": None,
            "machine_open": None,
            "url": None,
            "inbound": None,
        }
    )
    return None if value is None else (email_id.encode(), value)
