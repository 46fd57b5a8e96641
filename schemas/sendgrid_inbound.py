"""SendGrid Inbound Parse post (its form fields and attachment parts) -> one INBOUND canonical event.

Identity and time, chosen so that SendGrid's retries of one mail (5xx answers are retried for up to
72 hours) always give the same event and dedupe key:

- ``message_id`` is ``inbound:<Message-ID header>``; without a Message-ID it is ``inbound:sha256:<hash>``
  of the posted headers, addresses, subject, bodies and attachment names and sizes, which a retry
  posts unchanged.
- ``occurred_at`` is the time the receiving server stamped on the topmost ``Received`` header
  (SendGrid's MX, when the mail arrived), else the ``Date`` header (the sender's clock), else the
  ingest time. Only in that last case can two retries of one mail get different dedupe keys, and then
  the message shows one INBOUND status seen twice.

Both the default mode (fields ``headers``, ``from``, ``to``, ``cc``, ``subject``, ``envelope``,
``attachment-info``, ``content-ids``, ``attachmentN`` files …) and raw mode (the whole MIME message in
``email``) are read. Unparseable optional fields are ignored, never a reason to refuse a mail.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_string
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.event import CanonicalEvent, Provider, Source, derived_event_id, domain_of
from schemas.inbound import (
    MAX_ATTACHMENTS,
    MAX_RECIPIENTS,
    MAX_TEXT,
    Attachment,
    InboundDetails,
    attachment_problem,
)
from schemas.problems import InvalidEvent, Problem, problems_from
from schemas.status import EmailStatus, EventKind

RAW_TYPE = "inbound"
ID_PREFIX = "inbound:"
# Fields of which at least one makes a post an Inbound Parse post.
IDENTIFYING_FIELDS = ("headers", "email", "from", "to", "envelope")
_MAX_MESSAGE_ID = 400
_MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
_MAX_TIME = datetime(2100, 1, 1, tzinfo=UTC)
# An RFC 5322 date inside a Received header (SendGrid's MX writes it without the usual ';').
_DATE_IN_TEXT = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s*)?\d{1,2}\s+[A-Z][a-z]{2}\s+\d{4}\s+\d{1,2}:\d{2}(?::\d{2})?"
    r"(?:\s+(?:[+-]\d{4}|[A-Z]{1,5}))?"
)


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file part of the post, without its bytes."""

    part: str
    filename: str | None
    content_type: str | None
    size: int


@dataclass(frozen=True, slots=True)
class InboundPost:
    """The text fields (first value of each name) and file parts of one Inbound Parse post."""

    fields: Mapping[str, str]
    files: Sequence[UploadedFile] = ()


def parse_inbound(post: InboundPost, received_at: datetime) -> CanonicalEvent:
    """Map one Inbound Parse post. Raises InvalidEvent only when it is no Inbound Parse post at all."""
    fields = post.fields
    if not any(fields.get(name, "").strip() for name in IDENTIFYING_FIELDS):
        wanted = ", ".join(IDENTIFYING_FIELDS)
        raise InvalidEvent([Problem("headers", f"not an Inbound Parse post: none of {wanted} is present")])
    raw = fields.get("email", "")
    mime = _parse_mime(raw) if raw.strip() else None
    headers = mime if mime is not None else HeaderParser().parsestr(fields.get("headers", ""))
    envelope = _json_object(fields.get("envelope"))
    sender = _first_address(fields.get("from") or _header(headers, "From")) or _address(envelope.get("from"))
    recipients = _recipients(fields, headers, envelope)
    envelope_to = _addresses(_strings(envelope.get("to")))
    recipient = envelope_to[0] if envelope_to else recipients[0] if recipients else None
    attachments = _mime_attachments(mime) if mime is not None else _form_attachments(post)
    details = dict(
        recipients=tuple(recipients),
        subject=_text(fields.get("subject") or _decoded(_header(headers, "Subject"))),
        spam_score=_score(fields.get("spam_score")),
        spf=_text(fields.get("SPF")),
        dkim=_text(fields.get("dkim")),
        attachments=tuple(attachments),
    )
    message_id = _message_id(_header(headers, "Message-ID"), fields, attachments)
    occurred_at = _occurred_at(headers) or received_at
    try:
        return CanonicalEvent(
            event_id=derived_event_id(Provider.SENDGRID, message_id, RAW_TYPE, occurred_at),
            message_id=message_id,
            kind=EventKind.STATUS,
            status=EmailStatus.INBOUND,
            raw_type=RAW_TYPE,
            occurred_at=occurred_at,
            received_at=received_at,
            source=Source.INBOUND,
            provider=Provider.SENDGRID,
            recipient=recipient,
            recipient_domain=domain_of(recipient),
            sender=sender,
            sender_domain=domain_of(sender),
            inbound=InboundDetails.model_validate(details),
        )
    except ValidationError as exc:
        raise InvalidEvent(problems_from(exc)) from None


# --------------------------------------------------------------------------- identity and time


def _message_id(header: str | None, fields: Mapping[str, str], attachments: Sequence[Attachment]) -> str:
    mid = (header or "").strip().strip("<>").strip()
    if mid and len(mid) <= _MAX_MESSAGE_ID and mid.isprintable():
        return ID_PREFIX + mid
    digest = hashlib.sha256()
    for name in ("headers", "email", "from", "to", "cc", "subject", "text", "html", "envelope"):
        digest.update(
            name.encode() + b"\x1f" + fields.get(name, "").encode("utf-8", "surrogatepass") + b"\x1e"
        )
    for a in attachments:
        digest.update(f"{a.part}\x1f{a.filename}\x1f{a.size}\x1e".encode("utf-8", "surrogatepass"))
    return f"{ID_PREFIX}sha256:{digest.hexdigest()}"


def _occurred_at(headers: Message) -> datetime | None:
    received = headers.get_all("Received") or []
    if received:
        dates = _DATE_IN_TEXT.findall(str(received[0]))
        if dates and (at := _date(dates[-1])) is not None:
            return at
    return _date(_header(headers, "Date"))


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    at = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)  # "-0000": UTC, origin unknown
    return at if _MIN_TIME <= at < _MAX_TIME else None


# --------------------------------------------------------------------------- addresses


def _recipients(fields: Mapping[str, str], headers: Message, envelope: dict[str, Any]) -> list[str]:
    listed = [fields.get("to") or _header(headers, "To"), fields.get("cc") or _header(headers, "Cc")]
    found = _addresses(a for _, a in getaddresses([v for v in listed if v]))
    found += _addresses(_strings(envelope.get("to")))
    return list(dict.fromkeys(found))[:MAX_RECIPIENTS]


def _addresses(values: Iterable[str]) -> list[str]:
    return [a for a in (_address(v) for v in values) if a is not None]


def _address(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    address = value.strip().strip("<>").strip().lower()
    return address if "@" in address and 3 <= len(address) <= 320 and address.isprintable() else None


def _first_address(value: str | None) -> str | None:
    return _address(parseaddr(value)[1]) if value else None


# --------------------------------------------------------------------------- attachments


def _form_attachments(post: InboundPost) -> list[Attachment]:
    """Attachment parts with ``attachment-info`` (names, types, content ids) and ``content-ids``."""
    info = _json_object(post.fields.get("attachment-info"))
    inline = {part: cid for cid, part in _json_object(post.fields.get("content-ids")).items()}
    files = {f.part: f for f in post.files}
    parts = sorted({*files, *(k for k in info if isinstance(k, str))}, key=_part_order)
    out = []
    for part in parts[:MAX_ATTACHMENTS]:
        meta = info.get(part)
        meta = meta if isinstance(meta, dict) else {}
        upload = files.get(part)
        named = _str(meta.get("filename")) or _str(meta.get("name"))
        filename = _text(named or (upload.filename if upload else None))
        cid = _str(meta.get("content-id")) or _str(inline.get(part))
        out.append(
            _attachment(
                part,
                filename,
                _str(meta.get("type")) or (upload.content_type if upload else None),
                upload.size if upload else None,
                cid,
            )
        )
    return out


def _mime_attachments(mime: Message) -> list[Attachment]:
    out: list[Attachment] = []
    for part in mime.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        disposition = part.get_content_disposition()
        cid = part.get("Content-ID")
        if not filename and disposition != "attachment" and not (cid and disposition == "inline"):
            continue  # a body part (text/plain, text/html)
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
        part_name = f"attachment{len(out) + 1}"
        out.append(_attachment(part_name, _text(filename), part.get_content_type(), size, cid))
        if len(out) >= MAX_ATTACHMENTS:
            break
    return out


def _attachment(
    part: str, filename: str | None, content_type: str | None, size: int | None, cid: str | None
) -> Attachment:
    problem = attachment_problem(filename, content_type)
    return Attachment(
        part=part[:64],
        filename=filename,
        content_type=_text(content_type),
        size=size,
        content_id=_text(cid.strip().strip("<>") if cid else None),
        rejected=problem is not None,
        reason=problem,
    )


def _part_order(part: str) -> tuple[int, str]:
    digits = part.removeprefix("attachment")
    return (int(digits) if digits.isdigit() and len(digits) < 9 else 1 << 30, part)


# --------------------------------------------------------------------------- small helpers


def _parse_mime(raw: str) -> Message | None:
    try:
        return message_from_string(raw)
    except Exception:  # the stdlib parser is lenient; anything it still raises means "no MIME"
        return None


def _header(headers: Message, name: str) -> str | None:
    value = headers.get(name)
    return None if value is None else str(value)


def _decoded(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


def _json_object(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _text(value: str | None) -> str | None:
    text = value.strip() if isinstance(value, str) else None
    return text[:MAX_TEXT] if text else None


def _score(value: str | None) -> float | None:
    try:
        score = float(value) if value else None
    except ValueError:
        return None
    return score if score is not None and math.isfinite(score) else None
