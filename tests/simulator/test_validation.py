"""POST /v1/Emails validation (pure): each rule on its own, and all problems of one request at once."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.validation import (
    MAX_PROBLEMS,
    MAX_RECIPIENTS,
    MAX_REQUEST_BYTES,
    template_variables,
    validate_send,
)

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


def codes(body: dict[str, Any] | bytes) -> list[tuple[str, str]]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    request, problems = validate_send(raw, NOW)
    assert (request is None) == bool(problems)
    return [(p.field, p.code) for p in problems]


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


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_is_reported(rule: str) -> None:
    body, problem = RULES[rule]
    assert codes(body) == [problem]


def test_a_valid_request_passes_with_everything_optional() -> None:
    at = iso(NOW + timedelta(days=6, hours=23))
    pdf = base64.b64encode(b"%PDF").decode()
    attachments = [{"filename": "a.pdf", "contentType": "application/pdf", "content": pdf, "cid": "logo"}]
    body = valid(schedule={"sendAt": [at, "ignored: only the first value is used"]}, attachments=attachments)
    request, problems = validate_send(orjson.dumps(body), NOW)
    assert problems == []
    assert request is not None and request.send_at == NOW + timedelta(days=6, hours=23)
    assert request.attachments == 1 and request.tags == {"campaign": "spring-2026"}


def test_one_request_breaking_many_rules_gets_every_problem() -> None:
    body = {
        "from": {"address": "nüws@acme"},
        "to": [{"address": "ana@example.com"}, {"address": "bad"}],
        "content": {"subject": "Hi {{firstName}}", "html": ""},
        "tags": {"bad key": "v", "k": "x" * 300},
        "schedule": {"sendAt": ["2026-11-23 25:00"]},
        "attachments": [{"filename": "", "contentType": "pdf", "content": "***"}],
    }
    assert codes(body) == [
        ("from", "unicode_not_allowed"),
        ("from.address", "invalid_address"),
        ("to[1].address", "invalid_address"),
        ("content.html", "required"),
        ("to[0].variables", "missing_variable"),
        ("to[1].variables", "missing_variable"),
        ("tags.bad key", "tag_characters"),
        ("tags.k", "tag_value_length"),
        ("schedule.sendAt[0]", "invalid_datetime"),
        ("attachments[0].filename", "required"),
        ("attachments[0].contentType", "invalid_content_type"),
        ("attachments[0].content", "invalid_base64"),
    ]


def test_recipient_and_size_limits_are_reported_with_the_rest() -> None:
    recipients = [
        {"address": f"r{i}@example.com", "variables": {"firstName": "R"}} for i in range(MAX_RECIPIENTS + 1)
    ]
    blob = {
        "filename": "a.bin",
        "contentType": "application/octet-stream",
        "content": "A" * MAX_REQUEST_BYTES,
    }
    big = valid(to=recipients, attachments=[blob], tags={"k": "a b"})
    assert codes(big) == [
        ("(request)", "request_too_large"),
        ("to", "too_many_recipients"),
        ("tags.k", "tag_characters"),
    ]
    assert codes(valid(to=recipients[:MAX_RECIPIENTS])) == []


def test_problems_are_capped_and_say_so() -> None:
    recipients = [{"address": f"r{i}@example.com"} for i in range(MAX_PROBLEMS + 5)]
    found = codes(valid(to=recipients))
    assert len(found) == MAX_PROBLEMS + 1
    assert found[-1] == ("(request)", "too_many_problems")


def test_template_variables_are_the_root_names() -> None:
    assert template_variables("{{a}} {{ b.c | upcase }} {{- d -}} {% if e %}{{ 'lit' }}") == {"a", "b", "d"}


@settings(max_examples=150, deadline=None)
@given(
    recipients=st.lists(
        st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.(com|io)", fullmatch=True), min_size=1, max_size=20
    ),
    tags=st.dictionaries(
        st.from_regex(r"[A-Za-z0-9._~-]{1,20}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9._~-]{1,30}", fullmatch=True),
        max_size=10,
    ),
    ahead=st.integers(min_value=1, max_value=7 * 86_400),
)
def test_generated_valid_requests_pass(recipients: list[str], tags: dict[str, str], ahead: int) -> None:
    to = [{"address": a, "variables": {"firstName": "x"}} for a in recipients]
    body = valid(to=to, tags=tags, schedule={"sendAt": [iso(NOW + timedelta(seconds=ahead))]})
    request, problems = validate_send(orjson.dumps(body), NOW)
    assert problems == [] and request is not None
    assert len(request.recipients) == len(recipients)
