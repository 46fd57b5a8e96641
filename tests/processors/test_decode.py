"""The processor's msgspec decoder against the model of record (``Envelope.model_validate_json``).

Differential: for envelopes that are valid, nearly valid and broken in every field (timestamps in many
shapes, strings at their length limits, bad tags, wrong types, unknown fields, duplicate keys, bad
bytes), ``decode`` must accept exactly what pydantic accepts, with equal fields of equal types and the
same dedupe key, and refuse the rest with pydantic's reason.
"""

from __future__ import annotations

import gc
import json
import weakref
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.publisher import encode
from mailpulse.traffic import generate
from processors.consumer import _decode_all
from processors.decode import Undecodable, decode, decode_fast, decode_model
from schemas.event import CanonicalEvent
from schemas.sendgrid import parse_sendgrid_event
from schemas.status import EmailStatus, EventKind
from schemas.twilio import parse_cloud_event
from tests.processors.test_state_properties import ev

DIFF = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MISSING = object()  # the field is left out of the JSON object

JUNK: list[Any] = [None, True, False, 0, -1, 1.5, "", "x", [], {}, ["a"], {"a": "b"}, 2**64]


def _wide(edge: st.SearchStrategy[Any]) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """A field's mutations: (an edge value, or missing, null, of the wrong type), (an edge value)."""
    return st.one_of(edge, st.sampled_from(JUNK), st.just(MISSING)), edge


def _text(limit: int) -> st.SearchStrategy[str]:
    near_limit = st.sampled_from([0, 1, limit - 1, limit, limit + 1]).flatmap(
        lambda n: st.sampled_from(["a", "é", "\U0001f600", "\x00"]).map(lambda c: c * n)
    )
    return st.one_of(st.text(max_size=12), near_limit)


@st.composite
def valid_timestamps(draw: st.DrawFn) -> str:
    at = draw(st.datetimes(datetime(1970, 1, 2), datetime(2200, 12, 30)))
    fraction = draw(st.sampled_from(["", ".1", ".12", ".123", ".1234", ".123456", ".999999", ".000999"]))
    zone = draw(st.sampled_from(["Z", "Z", "+00:00", "-05:30", "+23:59", "-00:00"]))
    return at.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone


@st.composite
def timestamps(draw: st.DrawFn) -> Any:
    """Timestamps in the shape ingest writes, its neighbours, and shapes pydantic reads otherwise."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(st.integers(-(2**40), 2**40), st.floats(allow_nan=False), st.text(max_size=30)))
    year = draw(st.sampled_from([0, 1, 1969, 1970, 2026, 2200, 2201, 9999]))
    month, day = draw(st.integers(0, 13)), draw(st.sampled_from([0, 1, 28, 29, 30, 31, 32]))
    hour, minute, second = draw(st.integers(0, 25)), draw(st.integers(0, 61)), draw(st.integers(0, 61))
    fraction = draw(st.sampled_from(["", ".", ".1", ".123", ".123456", ".1234567", ".999999", ".000999"]))
    sep = draw(st.sampled_from(["T", "T", "T", "t", " ", "_"]))
    zone = draw(st.sampled_from(["Z", "Z", "z", "", "+00:00", "-05:30", "+23:59", "+24:00", "+0530", "+05"]))
    return f"{year:04d}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}{fraction}{zone}"


def _enum(values: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from([*values, *(v.lower() for v in values), "", "other"])


_TAG = st.from_regex(r"[A-Za-z0-9._~-]{1,8}", fullmatch=True)
_BAD_TAG = st.one_of(_TAG, _text(128), _text(256))
_OPTIONAL_TEXT = st.none() | st.text(max_size=8)
STATUSES = [s.value for s in EmailStatus]

# Per field: a valid value, a mutated one (anything), a mutated one of the field's own kind.
FIELDS: dict[str, tuple[st.SearchStrategy[Any], ...]] = {
    "event_id": (st.text(min_size=1, max_size=12), *_wide(_text(256))),
    "message_id": (st.text(min_size=1, max_size=12), *_wide(_text(512))),
    "provider_message_id": (_OPTIONAL_TEXT, *_wide(_OPTIONAL_TEXT)),
    "operation_id": (_OPTIONAL_TEXT, *_wide(_OPTIONAL_TEXT)),
    "raw_type": (st.text(min_size=1, max_size=12), *_wide(_text(128))),
    "occurred_at": (valid_timestamps(), *_wide(timestamps())),
    "received_at": (valid_timestamps(), *_wide(timestamps())),
    "source": (st.sampled_from(["webhook", "poller", "inbound"]), *_wide(_enum(["webhook", "poller"]))),
    "provider": (st.sampled_from(["twilio", "sendgrid"]), *_wide(_enum(["twilio", "sendgrid"]))),
    "recipient": (_OPTIONAL_TEXT, *_wide(_OPTIONAL_TEXT)),
    "recipient_domain": (_OPTIONAL_TEXT, *_wide(_OPTIONAL_TEXT)),
    "sender": (_OPTIONAL_TEXT, *_wide(_OPTIONAL_TEXT)),
    "sender_domain": (_OPTIONAL_TEXT, *_wide(_OPTIONAL_TEXT)),
    "tags": (
        st.dictionaries(_TAG, _TAG, max_size=10),
        *_wide(st.dictionaries(_BAD_TAG, _BAD_TAG, max_size=12)),
    ),
    "custom_args": (
        st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3),
        *_wide(st.just({"a": 1})),
    ),
    "categories": (st.lists(st.text(max_size=4), max_size=3), *_wide(st.lists(st.integers(), max_size=2))),
    "reason": (_OPTIONAL_TEXT, *_wide(_OPTIONAL_TEXT)),
    "smtp_status": (_OPTIONAL_TEXT, *_wide(_OPTIONAL_TEXT)),
    "bounce_type": (_OPTIONAL_TEXT, *_wide(_OPTIONAL_TEXT)),
    "bounce_classification": (_OPTIONAL_TEXT, *_wide(_OPTIONAL_TEXT)),
    "attempt": (
        st.none() | st.integers(0, 2**32 - 1),
        *_wide(st.sampled_from([2**32, -1, 1.0, 2.5, "3", True])),
    ),
    "machine_open": (st.none() | st.booleans(), *_wide(st.sampled_from([0, 1, "true", "false"]))),
    "url": (_OPTIONAL_TEXT, *_wide(_OPTIONAL_TEXT)),
    "inbound": (
        st.none(),
        *_wide(st.sampled_from([{"recipients": ["a@example.com"], "subject": "hi"}, {"x": 1}])),
    ),
    "kind": (st.sampled_from([k.value for k in EventKind]), *_wide(_enum(["status", "click"]))),
    "status": (st.sampled_from(STATUSES), *_wide(_enum(STATUSES))),
}


VALID: dict[str, Any] = {
    "event_id": "e1", "message_id": "m1", "kind": "status", "status": "DELIVERED", "raw_type": "delivered",
    "occurred_at": "2026-11-23T10:00:00.123Z", "received_at": "2026-11-23T10:00:01Z", "source": "webhook",
    "provider": "sendgrid",
}  # fmt: skip


@st.composite
def envelopes(draw: st.DrawFn, mutations: int = 3) -> dict[str, Any]:
    """A valid envelope (optional fields sometimes left out), then none, one or a few fields mutated."""
    event = {name: draw(valid) for name, (valid, *_) in FIELDS.items()}
    if event["kind"] != "status":
        event["status"] = None
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=8)):
        if name not in ("event_id", "message_id", "kind", "raw_type", "occurred_at", "received_at"):
            event[name] = MISSING  # the default applies
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=mutations)):
        event[name] = draw(FIELDS[name][1])
    event = {k: v for k, v in event.items() if v is not MISSING}
    if draw(st.integers(0, 19)) == 0:
        event[draw(st.sampled_from(["extra", "dedupe_key", "Event_id"]))] = "x"
    envelope: dict[str, Any] = {"event": event}
    version = draw(st.sampled_from([1, 1, 1, MISSING, MISSING, 2, "1", 1.0, True]))
    if version is not MISSING:
        envelope["schema_version"] = version
    return envelope


def _serialize(envelope: dict[str, Any], how: int) -> bytes:
    if how == 0:
        return json.dumps(envelope, ensure_ascii=True).encode()  # \u escapes, surrogate pairs
    try:
        return orjson.dumps(envelope)
    except orjson.JSONEncodeError:  # lone surrogates, ints beyond 64 bits
        return json.dumps(envelope).encode("utf-8", "surrogatepass")


def outcome(value: bytes, decoder: Any) -> tuple[Any, ...]:
    try:
        event: CanonicalEvent = decoder(value)
    except Undecodable as exc:
        return ("refused", str(exc))
    # Types too: an enum member, not its string; an aware UTC datetime, not an equal instant elsewhere.
    fields = {name: (type(v), v) for name, v in event.__dict__.items() if name in CanonicalEvent.model_fields}
    times = [(t.tzinfo, t.isoformat()) for t in (event.occurred_at, event.received_at)]
    return ("event", fields, times, event.dedupe_key, event.model_dump_json())


def assert_same(value: bytes) -> None:
    assert outcome(value, decode) == outcome(value, decode_model)


@DIFF
@given(envelopes(), st.integers(0, 2))
@example({"event": {}}, 1)
def test_decode_agrees_with_pydantic(envelope: dict[str, Any], how: int) -> None:
    assert_same(_serialize(envelope, how))


@DIFF
@given(st.sampled_from(sorted(FIELDS)), st.data())
def test_decode_agrees_with_one_field_wrong(name: str, data: st.DataObject) -> None:
    """A valid envelope but for one field: each constraint on its own (lengths, tags, types, times)."""
    envelope = data.draw(envelopes(mutations=0))
    envelope["event"][name] = data.draw(FIELDS[name][2])
    assert_same(_serialize(envelope, 1))


EDGES: list[tuple[str, Any]] = [
    *((name, "a" * n) for name, limit in (("event_id", 256), ("message_id", 512), ("raw_type", 128))
      for n in (0, 1, limit, limit + 1)),
    *((name, f"{y}-{m}T{t}{z}") for name in ("occurred_at", "received_at")
      for y in ("1969", "1970", "2200", "2201") for m in ("01-01", "12-31")
      for t in ("00:00:00", "23:59:59.999999") for z in ("Z", "+01:00", "-01:00")),
    ("tags", {"a": "b" * 256}), ("tags", {"a": "b" * 257}),
    ("tags", {"a" * 128: "b"}), ("tags", {"a" * 129: "b"}),
    ("tags", {str(n): "v" for n in range(10)}), ("tags", {str(n): "v" for n in range(11)}),
    ("tags", {"a b": "c"}), ("tags", {"a": ""}), ("tags", {"": "a"}), ("tags", {"é": "a"}),
    ("attempt", 2**32 - 1), ("attempt", 2**32), ("attempt", 0), ("attempt", -1),
    ("kind", "status"), ("kind", "click"), ("status", None), ("status", "OPENED"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "value"), EDGES)
def test_decode_agrees_at_the_limits(name: str, value: Any) -> None:
    """Each constraint on both sides of its limit, on an envelope valid otherwise."""
    event = VALID | {name: value}
    assert_same(orjson.dumps({"schema_version": 1, "event": event}))


@DIFF
@given(envelopes(), st.data())
def test_decode_agrees_on_mangled_bytes(envelope: dict[str, Any], data: st.DataObject) -> None:
    """Duplicate keys (the last wins in both, or neither), truncation, and bytes that are not UTF-8."""
    raw = _serialize(envelope, 1)
    how = data.draw(st.integers(0, 3))
    if how == 0:  # a second "event"/"schema_version" member: which one counts?
        raw = raw[:-1] + b',"event":' + _serialize(envelope["event"], 1) + b"}"
        if data.draw(st.booleans()):
            raw = b'{"event":{"event_id":"first"},' + raw[1:]
    elif how == 1:
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif how == 2:
        at = data.draw(st.integers(0, len(raw)))
        raw = (
            raw[:at]
            + data.draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b" ", b"\x00"]))
            + raw[at:]
        )
    else:
        raw = raw + data.draw(st.sampled_from([b" ", b"\n", b"x", b"{}", b"\x00"]))
    assert_same(raw)


def _traffic_events() -> list[CanonicalEvent]:
    traffic = generate(300, 8)
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    return [parse_sendgrid_event(e, now) for b in traffic.sendgrid_batches for e in b] + [
        parse_cloud_event(e, now) for b in traffic.twilio_batches for e in b
    ]


@pytest.fixture(scope="module")
def traffic_events() -> list[CanonicalEvent]:
    return _traffic_events()


def test_what_ingest_publishes_takes_the_fast_path(traffic_events: list[CanonicalEvent]) -> None:
    """Every envelope ingest writes for generated traffic is decoded by msgspec, to the same event."""
    assert len(traffic_events) > 1000
    for event in traffic_events:
        value = encode(event)
        fast = decode_fast(value)
        assert fast is not None, value
        assert outcome(value, decode) == outcome(value, decode_model)
        assert fast == event and fast.dedupe_key == event.dedupe_key


def test_received_mail_and_odd_timestamps_take_pydantic(traffic_events: list[CanonicalEvent]) -> None:
    event = traffic_events[0]
    for shape in ("2026-11-23 10:00:00Z", "2026-11-23T10:00:00.1234567Z", "1795428000"):
        value = encode(event).replace(event.occurred_at.isoformat().replace("+00:00", "Z").encode(), b"X", 1)
        value = value.replace(b'"X"', orjson.dumps(shape))
        assert decode_fast(value) is None
        assert_same(value)
    naive = encode(event).replace(b'Z"', b'"', 1)
    assert decode_fast(naive) is None
    with pytest.raises(Undecodable, match="timezone"):
        decode(naive)


def test_a_timestamp_beyond_datetimes_range_in_utc_is_refused(traffic_events: list[CanonicalEvent]) -> None:
    """Year 1 at +23:59 is year 0 in UTC: astimezone raised OverflowError, which pydantic does not turn
    into a validation error, so it escaped decode and stopped the processor on every replay."""
    value = encode(traffic_events[0])
    stamp = orjson.loads(value)["event"]["received_at"].encode()
    for bad in (b"0001-01-01T00:00:00+23:59", b"9999-12-31T23:59:59-23:59"):
        with pytest.raises(Undecodable, match="between 1970 and 2200"):
            decode(value.replace(stamp, bad))


def _record(offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", 0, offset, 0, 0, b"k", value, None, 1, len(value), [])


def test_an_undecodable_record_does_not_tie_its_batch_into_a_cycle() -> None:
    """The processor keeps a refused record's Undecodable beside the decoded events. Had it kept its
    traceback (or pydantic's error as its context, whose traceback holds the callers' frames), the
    batch's events would live until the cycle collector ran; they go with the last reference."""
    event = ev(EmailStatus.DELIVERED, 1)
    records = [_record(0, b"not json"), _record(1, encode(event))]
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        decoded = _decode_all(records)
        refused, accepted = decoded
        assert isinstance(refused, Undecodable) and accepted == event
        assert refused.__traceback__ is None and refused.__context__ is None
        assert "not a v1 envelope" in str(refused)
        watched = weakref.ref(accepted)
        del decoded, accepted
        assert watched() is None
    finally:
        if was_enabled:
            gc.enable()


def test_the_reason_for_refusing_a_record_does_not_repeat_it() -> None:
    """The dead letter carries the value once; pydantic's errors would add it again (in repr)."""
    value = b"\x01" * 100_000
    with pytest.raises(Undecodable) as refused:
        decode(value)
    assert str(refused.value).startswith("not a v1 envelope: 1 problems:")
    assert len(str(refused.value)) < 500
