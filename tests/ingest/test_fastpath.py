"""The fast path (ingest/fastpath.py) against the canonical one (pydantic models, then ``encode``):
whenever it builds a record, the record is byte for byte what the canonical path publishes for that
element, and whenever the canonical path refuses an element the fast path builds nothing (so the
caller lists the canonical problems). Generated input, mostly valid and sometimes wrong in every field,
plus fixtures and the generator's realistic traffic, which the fast path must take nearly whole. Pure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.publisher import Record, encode
from ingest.fastpath import received_stamp, sendgrid_record, twilio_record
from schemas.event import MAX_TAGS, CanonicalEvent, tag_problems
from schemas.problems import InvalidEvent
from schemas.sendgrid import KNOWN_FIELDS, parse_sendgrid_event, split_custom_args
from schemas.twilio import parse_cloud_event
from simulator.traffic import generate

FIXTURES = Path(__file__).parent.parent / "fixtures"
RECEIVED = datetime(2026, 11, 23, 10, 0, 5, 123456, tzinfo=UTC)  # sub-millisecond part dropped by both

Parse = Callable[[Any, datetime], CanonicalEvent]
Fast = Callable[[Any, datetime], Record | None]


def canonical(parse: Parse, raw: Any) -> Record | None:
    try:
        event = parse(raw, RECEIVED)
    except InvalidEvent:
        return None
    return event.message_id.encode(), encode(event)


def same(parse: Parse, fast: Fast, raw: Any) -> bool:
    """Asserts the paths agree; True when the fast path built the record."""
    expected = canonical(parse, raw)
    got = fast(raw, received_stamp(RECEIVED))
    if got is not None:
        assert expected is not None, f"fast path accepted what the canonical path refuses: {raw!r}"
        assert got == expected
    return got is not None


# --------------------------------------------------------------------------- values

MISSING = object()  # the key is left out
text = st.text(max_size=12)
scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | text
odd = scalars | st.lists(scalars, max_size=2) | st.dictionaries(text, scalars, max_size=2)


def spoiler(draw: st.DrawFn, names: tuple[str, ...]) -> Callable[..., Any]:
    """``field(name, valid)`` draws from ``valid`` (or leaves an optional field out, or null); up to
    two fields of each example get any JSON value at all instead."""
    spoiled = draw(mostly(st.just(()), st.sets(st.sampled_from(names), max_size=2)))

    def field(name: str, valid: st.SearchStrategy[Any], optional: bool = True) -> Any:
        if name in spoiled:
            return draw(odd | st.just(MISSING))
        return draw(valid | st.sampled_from([None, MISSING]) if optional else valid)

    return field


def build(fields: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {**extra, **{k: v for k, v in fields.items() if v is not MISSING}}


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` four times in five: most examples are valid, so the fast path gets exercised."""
    return st.sampled_from((True, True, True, True, False)).flatmap(lambda ok: good if ok else bad)


def pick(*values: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


sg_types = mostly(pick("processed", "delivered", "open", "bounce", "dropped", "deferred", "click",
                       "spamreport", "group_unsubscribe", "brand_new_type"), pick("x" * 129, ""))  # fmt: skip
emails = mostly(pick("ana@example.com", " Bo@Mail.Example ", "x@y", "ü@ñ.example", "no-at-sign"),
                pick("ab", "a@" + "b" * 600))  # fmt: skip
sg_message_ids = st.builds(
    "{}{}".format, mostly(pick("58ovY6tR"), pick("x" * 600, "", " ")),
    mostly(pick(".filterdrecv-p3-1.0", ".recvd-5b-x"), pick("")),
)  # fmt: skip
smtp_ids = mostly(pick("<58ovY6tR@ismtpd-0001>"), pick("<@host>", "", "plain", "<" + "y" * 600 + "@h>"))
timestamps = mostly(
    st.integers(946_684_800, 4_102_444_800),
    pick(0, 946_684_799, 4_102_444_801, True, 1.76e9, "1763900000"),
)
attempt_texts = pick("3", "0", "01", " 1", "1 ", "+1", "1.0", "-1", "4294967296", "4294967295", "1_0",
                     "\u0661", "99999999999")  # fmt: skip
tag_like = mostly(pick("spring-2026", "v1.2", "a~b"), pick("a b", "", "é", "x" * 300))
customs = st.dictionaries(
    mostly(pick("campaign", "customer_id", "ip", "pool", "a~b"), pick("bad key", "k" * 130, "smtp_id")),
    mostly(tag_like | st.integers(-5, 5) | st.booleans() | st.floats(allow_nan=False),
           st.none() | st.lists(text, max_size=2)),
    max_size=12,
)  # fmt: skip
SENDGRID_FIELDS = ("event", "email", "timestamp", "sg_event_id", "sg_message_id", "smtp-id", "category",
                   "reason", "response", "status", "type", "bounce_classification", "attempt",
                   "sg_machine_open", "url")  # fmt: skip
TWILIO_FIELDS = ("specversion", "type", "source", "id", "time", "data", "data.id", "data.status",
                 "data.updatedAt", "data.from", "data.to", "data.tags", "data.operationId")  # fmt: skip


@st.composite
def sendgrid_raw(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(odd)  # not an object at all
    field = spoiler(draw, SENDGRID_FIELDS)
    fields = {
        "event": field("event", sg_types, optional=False),
        "email": field("email", emails, optional=False),
        "timestamp": field("timestamp", timestamps, optional=False),
        "sg_event_id": field("sg_event_id", mostly(pick("ZXZlbnQ1", "") | text, pick("i" * 257))),
        "sg_message_id": field("sg_message_id", sg_message_ids),
        "smtp-id": field("smtp-id", smtp_ids),
        "category": field("category", text | st.lists(text, max_size=3)),
        "reason": field("reason", text),
        "response": field("response", st.sampled_from(["250 OK", ""])),
        "status": field("status", st.sampled_from(["5.1.1", "4.0.0"])),
        "type": field("type", st.sampled_from(["bounce", "blocked"])),
        "bounce_classification": field("bounce_classification", text),
        "attempt": field("attempt", mostly(st.integers(0, 9), st.integers(-2, 2**33) | attempt_texts)),
        "sg_machine_open": field("sg_machine_open", mostly(st.booleans(), pick("true", 1))),
        "url": field("url", st.just("https://example.com/a?to=ana%40example.com")),
    }
    return build(fields, draw(customs))


times = mostly(
    st.datetimes(datetime(1960, 1, 1), datetime(2300, 1, 1), timezones=st.just(UTC)).map(
        lambda d: d.isoformat().replace("+00:00", "Z")
    ) | pick("2026-11-23T10:00:01.019Z", "2026-11-23T10:00:01Z", "2026-11-23T10:00:01.5Z"),
    pick("2026-11-23T10:00:01.1234567Z", "2026-11-23T10:00:01+02:00", "2026-11-23 10:00:01Z",
         "2026-02-30T10:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T10:00:60Z", "2026-11-23T10:00:01",
         "1763900000", "0001-01-01T00:00:00Z", "2026-11-23t10:00:01z", 1763900000),
)  # fmt: skip
addresses = mostly(
    emails | st.fixed_dictionaries({"address": emails}, optional={"name": st.none() | text}),
    st.fixed_dictionaries({"name": text}) | st.fixed_dictionaries({"address": emails, "name": st.integers()}),
)
tags = st.dictionaries(
    mostly(pick("campaign", "brand", "a~b"), pick("bad key", "k" * 130)), tag_like, max_size=4
)
statuses = mostly(pick("QUEUED", "SENT", "DELIVERED", "UNDELIVERED", "OPENED", "FAILED", "BRAND_NEW"),
                  pick("", "S" * 65))  # fmt: skip
ce_types = mostly(pick("com.twilio.comms-api.email.delivered"),
                  pick("com.twilio.comms-api.operation.done", "", "t" * 129))  # fmt: skip


@st.composite
def twilio_raw(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(odd)
    field = spoiler(draw, TWILIO_FIELDS)
    data = {
        "id": field("data.id", mostly(pick("comms_email_01"), pick("", "e" * 257)), optional=False),
        "status": field("data.status", statuses, optional=False),
        "updatedAt": field("data.updatedAt", times),
        "from": field("data.from", addresses),
        "to": field("data.to", st.lists(addresses, max_size=3)),
        "tags": field("data.tags", tags),
        "operationId": field("data.operationId", st.just("comms_operation_01")),
    }
    aliases = st.sampled_from(["updated_at", "sender", "operation_id"])  # read by field name too
    extra = draw(st.dictionaries(mostly(pick("createdAt"), aliases), text, max_size=2))
    fields = {
        "specversion": field("specversion", mostly(pick("1.0", "1.x"), pick("2.0", "1")), optional=False),
        "type": field("type", ce_types, optional=False),
        "source": field("source", mostly(pick("/v1/Emails/comms_email_01"), pick("")), optional=False),
        "id": field("id", mostly(pick("EZ01"), pick("", "i" * 257)), optional=False),
        "time": field("time", times),
        "data": field("data", st.just(build(data, extra)), optional=False),
    }
    return build(fields, {})


# --------------------------------------------------------------------------- properties


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sendgrid_raw())
def test_sendgrid_fast_path_is_the_canonical_path(raw: Any) -> None:
    same(parse_sendgrid_event, sendgrid_record, raw)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(twilio_raw())
def test_twilio_fast_path_is_the_canonical_path(raw: Any) -> None:
    same(parse_cloud_event, twilio_record, raw)


def test_fixtures_and_generated_traffic_take_the_fast_path() -> None:
    """Realistic events, valid and not, agree; the fast path takes nearly all of them (otherwise the
    speed-up is not there: operation events, string-typed attempts and offsets are the exceptions)."""
    traffic = generate(400, seed=3)
    sendgrid = [*orjson.loads((FIXTURES / "sendgrid_events.json").read_bytes()),
                *(e for batch in traffic.sendgrid_batches for e in batch)]  # fmt: skip
    twilio = [*orjson.loads((FIXTURES / "twilio_cloudevents.json").read_bytes()),
              *(e for batch in traffic.twilio_batches for e in batch)]  # fmt: skip
    fast_sendgrid = sum(same(parse_sendgrid_event, sendgrid_record, raw) for raw in sendgrid)
    fast_twilio = sum(same(parse_cloud_event, twilio_record, raw) for raw in twilio)
    assert fast_sendgrid >= 0.95 * len(sendgrid) and fast_twilio >= 0.9 * len(twilio)


def test_refused_or_unsure_elements_are_left_to_the_canonical_path() -> None:
    good = {
        "email": "a@b.example",
        "timestamp": 1763900000,
        "event": "delivered",
        "sg_message_id": "X.recvd-1",
    }
    assert sendgrid_record(good, RECEIVED) is not None
    for change in (
        {"attempt": " 3"},  # pydantic may coerce it: the canonical path decides
        {"timestamp": True},
        {"smtp_id": "<X@h>"},  # also read by the model's field name
        {"sg_event_id": "i" * 257},
        {"email": "ab"},
        {"category": [1]},
    ):
        assert sendgrid_record({**good, **change}, RECEIVED) is None, change
    stamp = received_stamp(datetime(2026, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC))
    assert stamp == datetime(2026, 1, 1, 0, 0, 0, 999_000, tzinfo=UTC)
    assert received_stamp(RECEIVED) - RECEIVED == -timedelta(microseconds=456)


def split_custom_args_reference(raw: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """``schemas.sendgrid.split_custom_args`` as it was before it was made faster: the oracle."""
    custom = {
        k: v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in sorted(raw.items())
        if k not in KNOWN_FIELDS and isinstance(v, str | int | float | bool)
    }
    tags: dict[str, str] = {}
    for key, value in custom.items():
        if len(tags) < MAX_TAGS and not tag_problems({key: value}):
            tags[key] = value
    return tags, {k: v for k, v in custom.items() if k not in tags}


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(KNOWN_FIELDS)) | text | st.from_regex(r"[a-z~]{1,3}\n?"), odd))
def test_custom_args_split_as_before(raw: dict[str, Any]) -> None:
    got = split_custom_args(raw)
    assert got == split_custom_args_reference(raw)
    assert [list(d) for d in got] == [list(d) for d in split_custom_args_reference(raw)]  # same key order
