"""Analytics queries, pure: request parameters -> validated query -> SQL text with bound parameters, and
result rows -> the JSON shapes of the API. No I/O here (service.py runs the SQL).

Every value from a request travels as a bound parameter (``{name:Type}``); the only identifiers spliced
into SQL text are the database name (from settings) and dimension columns taken from ``DIMENSIONS``.

Counts come from ``message_minute`` (each message's statuses as bits, per minute and dimensions), so the
range is whole minutes: ``from`` is floored and ``to`` ceiled to the minute, and the
answer echoes the range actually used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from schemas import outcomes as oc
from schemas.mailbox_providers import NAMES as MAILBOX_PROVIDERS
from schemas.mailbox_providers import sql_mailbox_provider
from schemas.times import EARLIEST, parse_utc
from storage.tables import CLASSIFICATION_PREFIX, CLASSIFICATIONS, STATUS_BITS

DIMENSIONS: dict[str, str] = {  # API name -> rollup column or expression (the allow-list of identifiers)
    "provider": "provider",
    "sender_domain": "sender_domain",
    "recipient_domain": "recipient_domain",
    # The mailbox provider table applied when read (schemas.mailbox_providers): no stored column.
    "mailbox_provider": sql_mailbox_provider("recipient_domain"),
    "tag": "tag",
    # Per message, the classification of its bounce in range ('' when none): from its status bits.
    "bounce_classification": "bounce_classification",
}
FILTERS = ("provider", "sender_domain", "recipient_domain", "mailbox_provider", "tag")
BUCKETS = (60, 300, 900, 3600, 86400)
MAX_POINTS = 300  # the default bucket keeps a range under this many buckets
MAX_EXPLICIT_POINTS = 5000  # an explicit bucket may give more, up to this
MAX_RANGE = timedelta(days=93)
DEFAULT_RANGE = timedelta(hours=24)
# Always present in "volumes" (0 when none); other event kinds appear when they occur.
STATUSES = (
    "SCHEDULED",
    "QUEUED",
    "SENT",
    "DELIVERED",
    "UNDELIVERED",
    "OPENED",
    "FAILED",
    "CANCELED",
    "CLICK",
)
# Breakdown orders: a rate of schemas.outcomes (over outcomes), or the number of messages with an outcome.
ORDERS = ("failure", *oc.CLASSES, *oc.SIGNAL_RATES, "messages")
LEVELS = (0.5, 0.95, 0.99)
ESTIMATOR = "exact (ClickHouse quantilesExactInclusive: linear interpolation between order statistics)"
_MAX_FILTER_LEN = 512

Params = Mapping[str, Sequence[str]]  # query string: name -> every value given


class ParamErrors(ValueError):
    """Bad request parameters; ``problems`` lists every one as 'name: what is wrong'."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Filters:
    provider: str | None = None
    sender_domain: str | None = None
    recipient_domain: str | None = None
    mailbox_provider: str | None = None
    tag: str | None = None  # 'key=value'

    def as_dict(self) -> dict[str, str]:
        return {name: value for name in FILTERS if (value := getattr(self, name)) is not None}


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime  # inclusive, whole minute, UTC
    end: datetime  # exclusive, whole minute, UTC
    filters: Filters = field(default_factory=Filters)


@dataclass(frozen=True, slots=True)
class Breakdown:
    by: str
    order: str
    limit: int
    min_volume: int


@dataclass(frozen=True, slots=True)
class Sql:
    text: str
    parameters: dict[str, Any]


# ---------------------------------------------------------------- parameter validation


class _Reader:
    """Reads single-valued parameters, collecting every problem instead of stopping at the first."""

    def __init__(self, params: Params, allowed: Sequence[str]) -> None:
        self.params = params
        self.problems: list[str] = []
        for name in sorted(set(params) - set(allowed)):
            self.problems.append(f"{name}: unknown parameter (allowed: {', '.join(allowed)})")

    def get(self, name: str) -> str | None:
        values = self.params.get(name) or []
        if len(values) > 1:
            self.problems.append(f"{name}: given {len(values)} times, expected once")
            return None
        return values[0] if values else None

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name}: {raw[:40]!r} is not an integer")
            return default
        if not low <= value <= high:
            self.problems.append(f"{name}: must be between {low} and {high}, got {value}")
            return default
        return value

    def choice(self, name: str, default: str, choices: Sequence[str]) -> str:
        raw = self.get(name)
        if raw is None:
            return default
        if raw not in choices:
            self.problems.append(f"{name}: {raw[:40]!r} is not one of {', '.join(choices)}")
            return default
        return raw

    def done(self) -> None:
        if self.problems:
            raise ParamErrors(self.problems)


COMMON = ("from", "to", *FILTERS)
# The parameters each kind of request accepts (anything else is a 422), also what /api/openapi.json lists.
WINDOW_PARAMS = COMMON
BUCKETED_PARAMS = (*COMMON, "bucket")
BREAKDOWN_PARAMS = (*COMMON, "by", "order", "limit", "min_volume")
ALERTS_PARAMS = ("from", "to", "limit")


def _instant(reader: _Reader, name: str) -> datetime | None:
    raw = reader.get(name)
    if raw is None:
        return None
    try:
        return parse_utc(raw)  # no offset: UTC; outside what ClickHouse can hold: a problem, not a 500
    except ValueError as exc:
        reader.problems.append(f"{name}: {exc}")
        return None


def _floor_minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def _ceil_minute(t: datetime) -> datetime:
    floor = _floor_minute(t)
    return floor if floor == t else floor + timedelta(minutes=1)


def _filters(reader: _Reader) -> Filters:
    values: dict[str, str] = {}
    for name in FILTERS:
        raw = reader.get(name)
        if raw is None:
            continue
        if not raw or len(raw) > _MAX_FILTER_LEN:
            reader.problems.append(f"{name}: must be 1..{_MAX_FILTER_LEN} characters")
            continue
        if name == "mailbox_provider" and raw not in MAILBOX_PROVIDERS:
            reader.problems.append(
                f"mailbox_provider: {raw[:40]!r} is not one of {', '.join(MAILBOX_PROVIDERS)}"
            )
            continue
        if name == "tag":
            key, sep, value = raw.partition("=")
            if not (sep and key and value):
                reader.problems.append(f"tag: {raw[:40]!r} must be key=value (both non-empty)")
                continue
        values[name] = raw
    return Filters(**values)


def _window(reader: _Reader, now: datetime) -> Window:
    start, end = _instant(reader, "from"), _instant(reader, "to")
    filters = _filters(reader)
    end = _ceil_minute(end or now.astimezone(UTC))  # LATEST is a whole minute: no overflow
    start = _floor_minute(start) if start else max(EARLIEST, end - DEFAULT_RANGE)
    if "from" not in _bad(reader) and "to" not in _bad(reader):
        if end <= start:
            reader.problems.append("to: must be after from")
        elif end - start > MAX_RANGE:
            reader.problems.append(f"from: the range may span at most {MAX_RANGE.days} days")
    return Window(start, end, filters)


def _bad(reader: _Reader) -> set[str]:
    return {p.split(":", 1)[0] for p in reader.problems}


def _bucket(reader: _Reader, window: Window) -> int:
    span = (window.end - window.start).total_seconds()
    default = next((b for b in BUCKETS if span / b <= MAX_POINTS), BUCKETS[-1])
    raw = reader.get("bucket")
    if raw is None:
        return default
    if raw not in {str(b) for b in BUCKETS}:
        reader.problems.append(f"bucket: {raw[:40]!r} is not one of {', '.join(map(str, BUCKETS))} (seconds)")
        return default
    bucket = int(raw)
    if span / bucket > MAX_EXPLICIT_POINTS:
        reader.problems.append(
            f"bucket: {bucket} s gives more than {MAX_EXPLICIT_POINTS} buckets over the range"
        )
    return bucket


def parse_window(params: Params, now: datetime) -> Window:
    """/api/summary, /api/funnel."""
    reader = _Reader(params, WINDOW_PARAMS)
    window = _window(reader, now)
    reader.done()
    return window


def parse_bucketed(params: Params, now: datetime) -> tuple[Window, int]:
    """/api/timeseries, /api/latency."""
    reader = _Reader(params, BUCKETED_PARAMS)
    window = _window(reader, now)
    bucket = _bucket(reader, window)
    reader.done()
    return window, bucket


def parse_breakdown(params: Params, now: datetime) -> tuple[Window, Breakdown]:
    reader = _Reader(params, BREAKDOWN_PARAMS)
    window = _window(reader, now)
    by = reader.choice("by", "recipient_domain", tuple(DIMENSIONS))
    order = reader.choice("order", "failure", ORDERS)
    limit = reader.integer("limit", 10, 1, 1000)
    min_volume = reader.integer("min_volume", 1, 0, 10**12)
    reader.done()
    return window, Breakdown(by, order, limit, min_volume)


def parse_alerts(params: Params, now: datetime) -> tuple[Window, int]:
    reader = _Reader(params, ALERTS_PARAMS)
    window = _window(reader, now)
    limit = reader.integer("limit", 50, 1, 1000)
    reader.done()
    return window, limit


# ---------------------------------------------------------------- SQL


def _range_parameters(window: Window) -> dict[str, Any]:
    return {"start": int(window.start.timestamp()), "end": int(window.end.timestamp())}


def _filter_where(window: Window, tag_joined: bool) -> tuple[list[str], dict[str, Any]]:
    """Clauses on ``message_minute`` rows. A tag filter reads the row's tags, or, when the query joins
    them into ``tag`` (the tag breakdown), keeps just that tag (as the rollups did)."""
    clauses, parameters = [], {}
    for name, value in window.filters.as_dict().items():
        if name == "tag" and not tag_joined:
            clauses.append("has(tags, {f_tag:String})")
        else:
            clauses.append(f"{DIMENSIONS[name]} = {{f_{name}:String}}")
        parameters[f"f_{name}"] = value
    return clauses, parameters


def _bit(status: str) -> str:
    return f"bitTest(m, {STATUS_BITS.index(status)})"


# The status bits counted as "volumes" (the classification bits are a breakdown, not a status).
VOLUME_BITS: tuple[str, ...] = tuple(b for b in STATUS_BITS if not b.startswith(CLASSIFICATION_PREFIX))
# A message's bounce classification from its bits: the first of SendGrid's seven it has, else ''.
_CLASSIFICATION = (
    "multiIf(" + ", ".join(f"{_bit(CLASSIFICATION_PREFIX + c)}, '{c}'" for c in CLASSIFICATIONS) + ", '')"
)


# Per message (its rows in range OR-ed into ``m``): its final status in range and its flags.
_PER_MESSAGE = f"{oc.sql_final_status(lambda s: _bit(s.value))} AS f, {oc.sql_flags(_bit)}"
_OUTCOMES_SQL = " + ".join(oc.CLASSES)


def message_counts_sql(
    database: str, window: Window, key: str | None = None, bucket: int | None = None
) -> Sql:
    """Distinct messages per key from ``message_minute``: each message's rows in range OR-ed into one bit
    set (one hash-table entry per message and key), its final status in range taken from the bits by
    precedence (``schemas.outcomes``), then every status seen and the figures of ``schemas.outcomes``
    counted in one pass. Rows: (key, [count per VOLUME_BITS], *the counts of ``oc.FIELDS``).

    A message is in a range when it has an event whose time lies in it; its outcome there is that of
    the highest-precedence status among those events (its final status when the range holds all its
    events). ``key``: None (totals, key ''), a dimension (breakdown) or, with ``bucket``, the bucket
    start (time series). A message counts once per key value its events carry (once per tag for the
    tag breakdown), whatever its rows and duplicates. The group key is the key value and the message id
    joined unambiguously (length-prefixed, or a fixed-width hex time), as one String: ClickHouse hashes
    a single String key much faster than a tuple."""
    tag_key = key == "tag" and bucket is None
    clauses, parameters = _filter_where(window, tag_joined=tag_key)
    parameters |= _range_parameters(window)
    where = " AND ".join(
        [
            "minute >= toDateTime({start:Int64}, 'UTC')",
            "minute < toDateTime({end:Int64}, 'UTC')",
            *clauses,
        ]
    )
    if bucket is not None:
        parameters["bucket"] = bucket
        start = "toStartOfInterval(minute, toIntervalSecond({bucket:UInt32}))"
        inner = f"SELECT any({start}) AS k, groupBitOr(statuses) AS m"
        group = f"concat(hex(toUInt32({start})), message_id)"
    elif key is None:
        inner = "SELECT '' AS k, groupBitOr(statuses) AS m"
        group = "message_id"
    elif key == "bounce_classification":
        # One key per message: its classification bits OR-ed over its rows in range.
        inner = f"SELECT {_CLASSIFICATION} AS k, groupBitOr(statuses) AS m"
        group = "message_id"
    else:
        column = DIMENSIONS[key]
        inner = f"SELECT any({column}) AS k, groupBitOr(statuses) AS m"
        group = f"concat(toString(length({column})), ':', {column}, message_id)"
    source = f"{database}.message_minute"
    if tag_key:
        source += " ARRAY JOIN if(empty(tags), [''], tags) AS tag"
    bits = ", ".join(f"countIf({_bit(b)})" for b in VOLUME_BITS)
    figures = ",\n  ".join(
        f"{expr} AS {name}" for expr, name in zip(oc.sql_counts("f"), oc.FIELDS, strict=True)
    )
    text = f"""SELECT k, [{bits}] AS per_bit,
  {figures}
FROM (
  {inner}, {_PER_MESSAGE}
  FROM {source}
  WHERE {where}
  GROUP BY {group}
)
GROUP BY k"""
    return Sql(text, parameters)


def breakdown_sql(database: str, window: Window, spec: Breakdown) -> Sql:
    """``message_counts_sql`` per ``spec.by`` value, ranked and cut in ClickHouse: keys with at least
    ``min_volume`` messages with an outcome, descending by ``spec.order`` (keys without outcomes, whose
    rates are null, last), ties by key, the first ``limit``. The rates are the float divisions of
    ``schemas.outcomes``."""
    counts = message_counts_sql(database, window, key=spec.by)
    outcomes = f"({_OUTCOMES_SQL})"
    if spec.order == "messages":
        rank = f"{outcomes} DESC"
    else:
        numerator, denominator = _rate_sql(spec.order)
        rank = f"{denominator} > 0 DESC, if({denominator} > 0, {numerator} / {denominator}, 0) DESC"
    text = f"""{counts.text}
HAVING {outcomes} >= {{min_volume:UInt64}}
ORDER BY {rank}, k
LIMIT {{limit:UInt32}}"""
    return Sql(text, {**counts.parameters, "min_volume": spec.min_volume, "limit": spec.limit})


def _rate_sql(rate: str) -> tuple[str, str]:
    """(numerator, denominator) of a rate of ``schemas.outcomes`` over the ``oc.FIELDS`` columns."""
    outcomes = f"({_OUTCOMES_SQL})"
    if rate in oc.SIGNAL_RATES:
        numerator, denominator = oc.SIGNAL_RATES[rate]
        return numerator, outcomes if denominator == "outcomes" else denominator
    if rate == "failure":
        return f"({' + '.join(oc.FAILURE_CLASSES)})", outcomes
    return rate, "delivered" if rate in ("opened", "clicked") else outcomes


def _state_filters(window: Window) -> tuple[list[str], dict[str, Any]]:
    clauses = []
    parameters = _range_parameters(window)
    for name, value in window.filters.as_dict().items():
        if name == "tag":
            tag_key, _, tag_value = value.partition("=")
            clauses.append("tags[{f_tag_key:String}] = {f_tag_value:String}")
            parameters |= {"f_tag_key": tag_key, "f_tag_value": tag_value}
        else:
            clauses.append(f"{DIMENSIONS[name]} = {{f_{name}:String}}")
            parameters[f"f_{name}"] = value
    return clauses, parameters


def _in_range(column: str) -> str:
    start, end = "toDateTime64({start:Int64}, 3, 'UTC')", "toDateTime64({end:Int64}, 3, 'UTC')"
    return f"({column} >= {start} AND {column} < {end})"


def _state_where(column: str, window: Window) -> tuple[str, dict[str, Any]]:
    clauses, parameters = _state_filters(window)
    return " AND ".join([_in_range(column), *clauses]), parameters


Latency = Literal["deliver", "open"]
# metric -> (column whose time must lie in range, duration in ms)
_LATENCY: dict[str, tuple[str, str]] = {
    "deliver": ("delivered_at", "dateDiff('millisecond', coalesce(sent_at, queued_at), delivered_at)"),
    "open": ("opened_at", "dateDiff('millisecond', delivered_at, opened_at)"),
}


def latency_sql(database: str, window: Window, metric: Latency, bucket: int | None = None) -> Sql:
    """p50/p95/p99 and count of a per-message duration from the deduplicated message state (FINAL: one
    row per message, its latest version). Messages missing the start time are not counted."""
    column, duration = _LATENCY[metric]
    where, parameters = _state_where(column, window)
    key_sql = "''"
    if bucket is not None:
        key_sql = f"toStartOfInterval({column}, toIntervalSecond({{bucket:UInt32}}))"
        parameters["bucket"] = bucket
    levels = ", ".join(map(str, LEVELS))
    text = f"""SELECT k, quantilesExactInclusive({levels})(d) AS q, count(d) AS c
FROM (
  SELECT {key_sql} AS k, {duration} AS d
  FROM {database}.messages
  WHERE {where}
)
GROUP BY k"""
    return Sql(text, parameters)


def latencies_sql(database: str, window: Window) -> Sql:
    """Time to deliver and time to open in one pass over the message state (the summary needs both):
    (p-list, count) for messages delivered in range, then for messages opened in range."""
    clauses, parameters = _state_filters(window)
    (_, deliver), (_, opened) = _LATENCY["deliver"], _LATENCY["open"]
    where = " AND ".join(["(in_d OR in_o)", *clauses])
    levels = ", ".join(map(str, LEVELS))
    text = f"""SELECT quantilesExactInclusiveIf({levels})(d, in_d), countIf(d IS NOT NULL AND in_d),
  quantilesExactInclusiveIf({levels})(o, in_o), countIf(o IS NOT NULL AND in_o)
FROM (
  SELECT {deliver} AS d, {opened} AS o, {_in_range("delivered_at")} AS in_d, {_in_range("opened_at")} AS in_o
  FROM {database}.messages
  WHERE {where}
)"""
    return Sql(text, parameters)


def alerts_sql(database: str, window: Window, limit: int) -> Sql:
    text = f"""SELECT at, rule, metric, dimension, key, state, value, threshold, volume
FROM {database}.alerts FINAL
WHERE at >= toDateTime64({{start:Int64}}, 3, 'UTC') AND at < toDateTime64({{end:Int64}}, 3, 'UTC')
ORDER BY at DESC, rule, key
LIMIT {{limit:UInt32}}"""
    return Sql(text, {**_range_parameters(window), "limit": limit})


# ---------------------------------------------------------------- result shaping


@dataclass(slots=True)
class Counts:
    volumes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    figures: oc.Figures = field(default_factory=oc.Figures)


def bit_counts(rows: Sequence[Sequence[Any]]) -> dict[Any, Counts]:
    """Rows of ``message_counts_sql`` -> counts per key; kinds beyond STATUSES only when they occur."""
    out: dict[Any, Counts] = {}
    for key, per_bit, *figures in rows:
        counts = out[key] = Counts(figures=oc.from_row(figures))
        for status, n in zip(VOLUME_BITS, per_bit, strict=True):
            if n or status in counts.volumes:
                counts.volumes[status] = int(n)
    return out


def metrics(c: Counts) -> dict[str, Any]:
    """``volumes``: distinct messages per status or event kind seen in range; then the figures of
    ``schemas.outcomes`` (messages with an outcome, pending, counts, rates, funnel)."""
    return {"volumes": c.volumes, **oc.figures_json(c.figures)}


def iso(t: datetime) -> str:
    aware = t if t.tzinfo else t.replace(tzinfo=UTC)  # chDB returns naive UTC
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def percentiles(row: Sequence[Any] | None) -> dict[str, Any]:
    """A ``latency_sql`` row (k, [p50, p95, p99], count) -> {"p50", "p95", "p99", "count"}."""
    count = int(row[2]) if row else 0
    values: list[float | None] = [None, None, None]
    if row and count:
        values = [None if math.isnan(v) else float(v) for v in row[1]]
    return {"p50": values[0], "p95": values[1], "p99": values[2], "count": count}


def window_json(window: Window) -> dict[str, Any]:
    return {"from": iso(window.start), "to": iso(window.end), "filters": window.filters.as_dict()}
