"""Email API send requests for the simulator tests: a valid one, and one breaking each validation rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def valid(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": {"address": "orders@acme-shop.com", "name": "Acme Shop"},
        "to": [{"address": "ana@example.com", "variables": {"firstName": "Ana"}}],
        "content": {"subject": "Hi {{firstName}}", "html": "<p>Hello {{ firstName | upcase }}</p>"},
        "tags": {"campaign": "spring-2026"},
    }
    body.update(changes)
    return body


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in valid().items() if k != key}


def attachment(**fields: Any) -> dict[str, Any]:
    return valid(attachments=[fields])


def send_at(value: str) -> dict[str, Any]:
    return valid(schedule={"sendAt": [value]})


def one_recipient(**fields: Any) -> dict[str, Any]:
    return valid(to=[fields])


TXT = {"filename": "a.txt", "contentType": "text/plain", "content": "aGk="}


# One request per rule: (body, the one problem it must report).
RULES: dict[str, tuple[dict[str, Any] | bytes, tuple[str, str]]] = {
    "body is JSON": (b"{not json", ("(request)", "invalid_json")),
    "body is an object": (b"[1, 2]", ("(request)", "invalid_type")),
    "from required": (without("from"), ("from", "required")),
    "from without Unicode": (
        valid(**{"from": {"address": "news@acme-shop.com", "name": "Acmé"}}),
        ("from", "unicode_not_allowed"),
    ),
    "from is an address": (valid(**{"from": {"address": "acme.com"}}), ("from.address", "invalid_address")),
    "to required": (without("to"), ("to", "required")),
    "to not empty": (valid(to=[]), ("to", "invalid_type")),
    "recipient is an address": (
        one_recipient(address="nobody", variables={"firstName": "N"}),
        ("to[0].address", "invalid_address"),
    ),
    "subject required": (valid(content={"html": "<p>x</p>"}), ("content.subject", "required")),
    "html required": (valid(content={"subject": "x", "text": "plain"}), ("content.html", "required")),
    "content required": (without("content"), ("content", "required")),
    "every variable for every recipient": (
        one_recipient(address="ana@example.com"),
        ("to[0].variables", "missing_variable"),
    ),
    "at most 10 tags": (valid(tags={f"k{i}": "v" for i in range(11)}), ("tags", "too_many_tags")),
    "tag key at most 128": (valid(tags={"k" * 129: "v"}), (f"tags.{'k' * 40}", "tag_key_length")),
    "tag value at most 256": (valid(tags={"k": "v" * 257}), ("tags.k", "tag_value_length")),
    "tag characters": (valid(tags={"k": "a b"}), ("tags.k", "tag_characters")),
    "no newline after a tag": (valid(tags={"k": "ab\n"}), ("tags.k", "tag_characters")),
    "sendAt without a trailing newline": (
        send_at(iso(NOW + timedelta(days=1)) + "\n"),
        ("schedule.sendAt[0]", "invalid_datetime"),
    ),
    "sendAt is RFC 3339": (send_at("tomorrow at noon"), ("schedule.sendAt[0]", "invalid_datetime")),
    "sendAt at most 7 days ahead": (
        send_at(iso(NOW + timedelta(days=7, seconds=1))),
        ("schedule.sendAt[0]", "send_at_too_far"),
    ),
    "sendAt in the future": (
        send_at(iso(NOW - timedelta(minutes=1))),
        ("schedule.sendAt[0]", "send_at_in_past"),
    ),
    "attachment filename": (
        attachment(**{**TXT, "filename": None}),
        ("attachments[0].filename", "required"),
    ),
    "attachment contentType": (
        attachment(**{**TXT, "contentType": ""}),
        ("attachments[0].contentType", "required"),
    ),
    "attachment content": (
        attachment(filename="a.txt", contentType="text/plain"),
        ("attachments[0].content", "required"),
    ),
    "attachment content base64": (
        attachment(**{**TXT, "content": "no base64!"}),
        ("attachments[0].content", "invalid_base64"),
    ),
    "attachment cid a string": (attachment(**TXT, cid=7), ("attachments[0].cid", "invalid_type")),
}
