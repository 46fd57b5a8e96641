"""POST /v1/Emails validation (pure): each rule on its own, and all problems of one request at once."""

from __future__ import annotations

import base64
from datetime import timedelta
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
from tests.simulator.send_requests import NOW, RULES, iso, valid


def codes(body: dict[str, Any] | bytes) -> list[tuple[str, str]]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    request, problems = validate_send(raw, NOW)
    assert (request is None) == bool(problems)
    return [(p.field, p.code) for p in problems]


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
