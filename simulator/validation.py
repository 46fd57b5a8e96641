"""Validation of ``POST /v1/Emails`` bodies: every problem found, in one list. Pure.

The rules (the Email API's, docs/providers.md): whole request at most 10 MB (10 MiB here); ``from`` an
address without
Unicode; ``to`` a non-empty array of recipients, at most 10,000; ``content.subject`` and
``content.html`` required (``text`` optional); every template variable (``{{name}}``) of subject, text
and html present in every recipient's ``variables``; ``tags`` at most 10 pairs, key at most 128 and
value at most 256 characters of ``[A-Za-z0-9._~-]``; ``schedule.sendAt`` an array whose first value
(the only one used) is RFC 3339, in the future and at most 7 days ahead; ``attachments`` each with
``filename``, ``contentType``, base64 ``content`` and an optional ``cid``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from schemas.event import MAX_TAG_KEY, MAX_TAG_VALUE, MAX_TAGS, TAG_CHARS
from simulator.model import Address

MAX_REQUEST_BYTES = 10 * 1024 * 1024
MAX_RECIPIENTS = 10_000
MAX_SCHEDULE_AHEAD = timedelta(days=7)
MAX_PROBLEMS = 1000  # a 10,000-recipient request can break a rule 10,000 times; say so once truncated

_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")  # fullmatch: "$" would accept a trailing newline
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_MIME_TYPE = re.compile(r"[\w.+-]+/[\w.+-]+")
# Liquid output markup: {{ name }}, {{ user.first | upcase }}; the root name is the variable to supply.
_VARIABLE = re.compile(r"\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    name: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendRequest:
    """A valid send request, as the simulator uses it."""

    sender: Address
    recipients: tuple[Recipient, ...]
    subject: str
    tags: dict[str, str]
    send_at: datetime | None
    attachments: int = 0


class _Problems(list[Problem]):
    def add(self, where: str, code: str, message: str) -> None:
        if len(self) < MAX_PROBLEMS:
            self.append(Problem(where, code, message))
        elif len(self) == MAX_PROBLEMS:
            self.append(Problem("(request)", "too_many_problems", f"more than {MAX_PROBLEMS} problems"))


def template_variables(*texts: str) -> set[str]:
    """Root names of the Liquid variables used in ``texts``."""
    return {name for text in texts for name in _VARIABLE.findall(text)}


def validate_send(body: bytes, now: datetime) -> tuple[SendRequest | None, list[Problem]]:
    """The request, or None and every problem found (``now``: API time, for ``schedule``)."""
    problems = _Problems()
    if len(body) > MAX_REQUEST_BYTES:
        problems.add("(request)", "request_too_large", f"request is {len(body)} bytes, at most 10 MB allowed")
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        problems.add("(request)", "invalid_json", f"body is not JSON: {exc}")
        return None, list(problems)
    if not isinstance(raw, dict):
        problems.add("(request)", "invalid_type", "body must be a JSON object")
        return None, list(problems)
    sender = _sender(raw.get("from"), problems)
    recipients = _recipients(raw.get("to"), problems)
    subject, texts = _content(raw.get("content"), problems)
    needed = template_variables(*texts)
    for index, recipient in enumerate(recipients):
        for name in sorted(needed - recipient.variables.keys()):
            problems.add(
                f"to[{index}].variables", "missing_variable", f"variable {name!r} is used but not set"
            )
    tags = _tags(raw.get("tags"), problems)
    send_at = _schedule(raw.get("schedule"), now, problems)
    attachments = _attachments(raw.get("attachments"), problems)
    if problems or sender is None:
        return None, list(problems)
    request = SendRequest(sender, tuple(recipients), subject, tags, send_at, attachments)
    return request, []


def _sender(value: Any, problems: _Problems) -> Address | None:
    if value is None:
        problems.add("from", "required", "from is required")
        return None
    if not isinstance(value, dict) or not isinstance(value.get("address"), str):
        problems.add("from", "invalid_type", "from must be an object with a string address")
        return None
    address, name = value["address"], value.get("name")
    ok = True
    if not address.isascii() or (isinstance(name, str) and not name.isascii()):
        problems.add("from", "unicode_not_allowed", "from does not support Unicode characters")
        ok = False
    if not _ADDRESS.fullmatch(address):
        problems.add("from.address", "invalid_address", f"{address[:80]!r} is not an email address")
        ok = False
    if name is not None and not isinstance(name, str):
        problems.add("from.name", "invalid_type", "from.name must be a string")
        ok = False
    return Address(address, name) if ok else None


def _recipients(value: Any, problems: _Problems) -> list[Recipient]:
    if value is None:
        problems.add("to", "required", "to is required")
        return []
    if not isinstance(value, list) or not value:
        problems.add("to", "invalid_type", "to must be a non-empty array of recipients")
        return []
    if len(value) > MAX_RECIPIENTS:
        problems.add("to", "too_many_recipients", f"{len(value)} recipients, at most {MAX_RECIPIENTS}")
    found = []
    for index, item in enumerate(value):
        where = f"to[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("address"), str):
            problems.add(where, "invalid_type", "a recipient must be an object with a string address")
            continue
        if not _ADDRESS.fullmatch(item["address"]):
            problems.add(f"{where}.address", "invalid_address", f"{item['address'][:80]!r} is no address")
        variables = item.get("variables", {})
        if not isinstance(variables, dict):
            problems.add(f"{where}.variables", "invalid_type", "variables must be an object")
            variables = {}
        name = item.get("name")
        found.append(Recipient(item["address"], name if isinstance(name, str) else None, variables))
    return found


def _content(value: Any, problems: _Problems) -> tuple[str, list[str]]:
    if not isinstance(value, dict):
        problems.add("content", "required", "content with subject and html is required")
        return "", []
    texts = []
    for key in ("subject", "html"):
        text = value.get(key)
        if not isinstance(text, str) or not text.strip():
            problems.add(f"content.{key}", "required", f"content.{key} is required (a non-empty string)")
        else:
            texts.append(text)
    text = value.get("text")
    if text is not None and not isinstance(text, str):
        problems.add("content.text", "invalid_type", "content.text must be a string")
    elif text:
        texts.append(text)
    subject = value.get("subject")
    return (subject if isinstance(subject, str) else ""), texts


def _tags(value: Any, problems: _Problems) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add("tags", "invalid_type", "tags must be an object of key-value pairs")
        return {}
    if len(value) > MAX_TAGS:
        problems.add("tags", "too_many_tags", f"{len(value)} tags, at most {MAX_TAGS}")
    for key, tag in value.items():
        where = f"tags.{key[:40]}"
        if not 0 < len(key) <= MAX_TAG_KEY:
            problems.add(where, "tag_key_length", f"tag keys are 1..{MAX_TAG_KEY} characters")
        elif not TAG_CHARS.fullmatch(key):
            problems.add(where, "tag_characters", "tag keys may only contain letters, digits, . _ - ~")
        if not isinstance(tag, str):
            problems.add(where, "invalid_type", "tag values must be strings")
        elif not 0 < len(tag) <= MAX_TAG_VALUE:
            problems.add(where, "tag_value_length", f"tag values are 1..{MAX_TAG_VALUE} characters")
        elif not TAG_CHARS.fullmatch(tag):
            problems.add(where, "tag_characters", "tag values may only contain letters, digits, . _ - ~")
    return {k: v for k, v in value.items() if isinstance(v, str)}


def _schedule(value: Any, now: datetime, problems: _Problems) -> datetime | None:
    if value is None:
        return None
    send_at = value.get("sendAt") if isinstance(value, dict) else None
    if not isinstance(send_at, list) or not send_at:
        problems.add("schedule.sendAt", "invalid_type", "schedule.sendAt must be a non-empty array")
        return None
    first = send_at[0]  # only the first value is used
    at = parse_rfc3339(first)
    if at is None:
        problems.add("schedule.sendAt[0]", "invalid_datetime", "sendAt must be RFC 3339 with a time zone")
        return None
    if at <= now:
        problems.add("schedule.sendAt[0]", "send_at_in_past", "sendAt must be in the future")
    elif at - now > MAX_SCHEDULE_AHEAD:
        problems.add("schedule.sendAt[0]", "send_at_too_far", "emails can be scheduled at most 7 days ahead")
    return at


def parse_rfc3339(value: Any) -> datetime | None:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError:  # matches the pattern but is no date (month 13, February 30)
        return None


def _attachments(value: Any, problems: _Problems) -> int:
    if value is None:
        return 0
    if not isinstance(value, list):
        problems.add("attachments", "invalid_type", "attachments must be an array")
        return 0
    for index, item in enumerate(value):
        where = f"attachments[{index}]"
        if not isinstance(item, dict):
            problems.add(where, "invalid_type", "an attachment must be an object")
            continue
        for key in ("filename", "contentType", "content"):
            if not isinstance(item.get(key), str) or not item[key]:
                problems.add(f"{where}.{key}", "required", f"{key} is required (a non-empty string)")
        content_type, content = item.get("contentType"), item.get("content")
        if isinstance(content_type, str) and content_type and not _MIME_TYPE.fullmatch(content_type):
            problems.add(f"{where}.contentType", "invalid_content_type", "contentType must be a MIME type")
        if isinstance(content, str) and content and not _is_base64(content):
            problems.add(f"{where}.content", "invalid_base64", "content must be base64")
        cid = item.get("cid")
        if cid is not None and (not isinstance(cid, str) or not cid):
            problems.add(f"{where}.cid", "invalid_type", "cid must be a non-empty string when given")
    return len(value)


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True
