"""The outcome of a message and every figure over outcomes: the one definition every surface uses (the
demo's summary, ``mailpulse report``, ``/api/*``, the dashboard and the alert rules). Pure.

**Final status.** The highest-precedence outbound status a message has seen (``schemas.status``: SCHEDULED
< QUEUED < CANCELED < FAILED < SENT < DELIVERED < UNDELIVERED < OPENED); INBOUND is received mail, not
outbound, and never counts.

**Outcome classes** by final status, disjoint, so they add up to 100% of the messages with an outcome:

- delivered: DELIVERED or OPENED (an open proves delivery and beats a later bounce)
- bounced: UNDELIVERED
- failed: FAILED
- canceled: CANCELED

A final status of SCHEDULED, QUEUED or SENT is no outcome yet (pending).

**Rates**, with ``outcomes = delivered + bounced + failed + canceled``::

    delivered rate = delivered / outcomes          bounced rate  = bounced / outcomes
    failed rate    = failed / outcomes             canceled rate = canceled / outcomes
    failure rate   = (bounced + failed) / outcomes (the alert rules' failure_rate; canceling is the
                                                     sender's choice, not a failure)
    opened rate    = opened / delivered            clicked rate  = clicked / delivered

where ``opened`` = delivered messages whose final status is OPENED or that have a click (a click proves
the open), ``clicked`` = delivered messages with a click. A rate with a zero denominator is None.

**Deliverability signals** (what mailbox providers and recipients did with the mail)::

    spam rate        = spam_reported / delivered   unsubscribe rate = unsubscribed / delivered
    block rate       = blocked / outcomes          deferral rate    = deferred / reached_sent

where ``spam_reported`` = delivered messages with a spam report (SendGrid ``spamreport``),
``unsubscribed`` = delivered messages with an ``unsubscribe`` or ``group_unsubscribe``, ``blocked`` =
bounced messages whose bounce is a block (SendGrid bounce ``type`` = ``blocked``: a refusal for the
sender's reputation or content, not a bad address; ``blocked`` is part of ``bounced``, shown apart),
``deferred`` = messages that reached SENT and were deferred at least once (throttled, then sent on).

**Funnel.** Each message counts at every stage it reached at least: QUEUED, SENT, DELIVERED, OPENED,
CLICKED, judged from its final status (a DELIVERED message has passed QUEUED and SENT even when those
webhooks were lost), so the counts never increase from stage to stage. Reached by final status: QUEUED
for QUEUED and FAILED; SENT for SENT and UNDELIVERED; DELIVERED for DELIVERED; OPENED for OPENED or a
delivered message with a click; CLICKED for a delivered message with a click. SCHEDULED and CANCELED
reach no stage. The DELIVERED, OPENED and CLICKED stages equal the delivered, opened and clicked counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from schemas.status import PRECEDENCE, EmailStatus

S = EmailStatus

# Outbound statuses, highest precedence first: the first one a message has seen is its final status.
FINAL_ORDER: tuple[EmailStatus, ...] = tuple(
    sorted((s for s in EmailStatus if s is not S.INBOUND), key=PRECEDENCE.__getitem__, reverse=True)
)
CLASSES: dict[str, frozenset[EmailStatus]] = {
    "delivered": frozenset({S.DELIVERED, S.OPENED}),
    "bounced": frozenset({S.UNDELIVERED}),
    "failed": frozenset({S.FAILED}),
    "canceled": frozenset({S.CANCELED}),
}
PENDING: frozenset[EmailStatus] = frozenset({S.SCHEDULED, S.QUEUED, S.SENT})
FAILURE_CLASSES: tuple[str, ...] = ("bounced", "failed")
STAGES: tuple[str, ...] = ("QUEUED", "SENT", "DELIVERED", "OPENED", "CLICKED")
# Stages reached (a count of STAGES) by final status, before opens and clicks are looked at.
_REACHED: dict[EmailStatus, int] = {
    S.SCHEDULED: 0,
    S.CANCELED: 0,
    S.QUEUED: 1,
    S.FAILED: 1,
    S.SENT: 2,
    S.UNDELIVERED: 2,
    S.DELIVERED: 3,
    S.OPENED: 4,
}
# What a message has seen besides its statuses: flag -> the event kinds that set it, named as the status
# bits of the storage (upper-cased kinds; BLOCKED is a bounce of type "blocked").
FLAGS: dict[str, tuple[str, ...]] = {
    "clicked": ("CLICK",),
    "spam_reported": ("SPAMREPORT",),
    "unsubscribed": ("UNSUBSCRIBE", "GROUP_UNSUBSCRIBE"),
    "blocked": ("BLOCKED",),
    "deferred": ("DEFERRED",),
}
SIGNALS: tuple[str, ...] = ("spam_reported", "unsubscribed", "blocked", "deferred")
# The counts a set of messages is summed into, in this order (also the order of ``sql_counts``).
FIELDS: tuple[str, ...] = (
    "pending", *CLASSES, "opened", "clicked", "reached_queued", "reached_sent", *SIGNALS
)  # fmt: skip
RATES: tuple[str, ...] = (
    *CLASSES,
    "failure",
    "opened",
    "clicked",
    "spam",
    "unsubscribe",
    "block",
    "deferral",
)
# Signal rate -> (numerator, denominator), both FIELDS or "outcomes".
SIGNAL_RATES: dict[str, tuple[str, str]] = {
    "spam": ("spam_reported", "delivered"),
    "unsubscribe": ("unsubscribed", "delivered"),
    "block": ("blocked", "outcomes"),
    "deferral": ("deferred", "reached_sent"),
}


@dataclass(frozen=True, slots=True)
class Seen:
    """The flags of one message (``FLAGS``): what it has seen besides its statuses."""

    clicked: bool = False
    spam_reported: bool = False
    unsubscribed: bool = False
    blocked: bool = False
    deferred: bool = False


def final_status(statuses: Iterable[EmailStatus | str]) -> EmailStatus | None:
    """The highest-precedence outbound status among ``statuses``; None when there is none."""
    seen = {EmailStatus(s) for s in statuses}
    return next((s for s in FINAL_ORDER if s in seen), None)


def outcome(final: EmailStatus | None) -> str | None:
    """The outcome class of a final status; None while pending (or without an outbound status)."""
    return next((name for name, members in CLASSES.items() if final in members), None)


def reached(final: EmailStatus | None, clicked: bool) -> int:
    """How many of ``STAGES`` a message reached, from its final status and whether it has a click."""
    if final is None:
        return 0
    if final in CLASSES["delivered"] and clicked:
        return 5
    return _REACHED[final]


@dataclass(frozen=True, slots=True)
class Figures:
    """Counts of distinct messages (see the module docstring for each)."""

    pending: int = 0
    delivered: int = 0
    bounced: int = 0
    failed: int = 0
    canceled: int = 0
    opened: int = 0
    clicked: int = 0
    reached_queued: int = 0
    reached_sent: int = 0
    spam_reported: int = 0
    unsubscribed: int = 0
    blocked: int = 0
    deferred: int = 0

    @property
    def outcomes(self) -> int:
        """Messages with an outcome: the denominator of the class rates."""
        return self.delivered + self.bounced + self.failed + self.canceled

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in (*CLASSES, "opened", "clicked", *SIGNALS)}

    def denominator(self, name: str) -> int:
        """The count a rate of ``RATES`` divides by (the volume an alert rule's ``min_volume`` reads)."""
        if name in SIGNAL_RATES:
            under = SIGNAL_RATES[name][1]
            return self.outcomes if under == "outcomes" else int(getattr(self, under))
        return self.delivered if name in ("opened", "clicked") else self.outcomes

    def numerator(self, name: str) -> int:
        if name in SIGNAL_RATES:
            return int(getattr(self, SIGNAL_RATES[name][0]))
        if name == "failure":
            return sum(getattr(self, n) for n in FAILURE_CLASSES)
        return int(getattr(self, name))

    def rates(self) -> dict[str, float | None]:
        return {name: ratio(self.numerator(name), self.denominator(name)) for name in RATES}

    def funnel(self) -> list[tuple[str, int]]:
        """``[stage, messages]`` per stage, never increasing."""
        counts = (self.reached_queued, self.reached_sent, self.delivered, self.opened, self.clicked)
        return list(zip(STAGES, counts, strict=True))


def ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def tally(messages: Iterable[tuple[EmailStatus | None, bool | Seen]]) -> Figures:
    """Figures of messages given as (final status, what else it has seen: ``Seen``, or just whether it
    has a click); None and INBOUND count nowhere."""
    counts = dict.fromkeys(FIELDS, 0)
    for final, flags in messages:
        if final is None or final is S.INBOUND:
            continue
        seen = flags if isinstance(flags, Seen) else Seen(clicked=flags)
        name = outcome(final)
        counts[name or "pending"] += 1
        stages = reached(final, seen.clicked)
        for n, field_name in ((1, "reached_queued"), (2, "reached_sent"), (4, "opened"), (5, "clicked")):
            counts[field_name] += stages >= n
        counts["spam_reported"] += name == "delivered" and seen.spam_reported
        counts["unsubscribed"] += name == "delivered" and seen.unsubscribed
        counts["blocked"] += name == "bounced" and seen.blocked
        counts["deferred"] += stages >= 2 and seen.deferred
    return Figures(**counts)


def from_row(values: Iterable[int]) -> Figures:
    """The values of ``sql_counts`` columns, in ``FIELDS`` order."""
    return Figures(**dict(zip(FIELDS, map(int, values), strict=True)))


# ---------------------------------------------------------------- the same definitions as SQL


def _in(column: str, statuses: Iterable[EmailStatus]) -> str:
    return f"{column} IN ({', '.join(sorted(repr(s.value) for s in statuses))})"


def sql_final_status(has: Callable[[EmailStatus], str]) -> str:
    """A ClickHouse expression for the final status ('' without an outbound status); ``has(status)`` is
    an expression true when the message has seen ``status``."""
    arms = ", ".join(f"{has(s)}, '{s.value}'" for s in FINAL_ORDER)
    return f"multiIf({arms}, '')"


def sql_flag(name: str) -> str:
    """The column ``sql_flags`` gives flag ``name`` of ``FLAGS`` (``has_clicked``, ...)."""
    return f"has_{name}"


def sql_flags(has: Callable[[str], str]) -> str:
    """Select expressions, one per ``FLAGS`` entry, named by ``sql_flag``; ``has(kind)`` is an expression
    true when the message has seen the event kind (a status bit name such as ``SPAMREPORT``)."""
    return ", ".join(f"({' OR '.join(map(has, kinds))}) AS {sql_flag(name)}" for name, kinds in FLAGS.items())


def sql_counts(final: str) -> list[str]:
    """Aggregate expressions, one per ``FIELDS`` entry, over rows holding one message each: its final
    status (the string column ``final``) and its flags (the boolean columns of ``sql_flags``)."""
    delivered = _in(final, CLASSES["delivered"])
    clicked = sql_flag("clicked")
    engaged = f"({final} = '{S.OPENED.value}' OR {clicked})"
    stage_from = {n: [s for s, r in _REACHED.items() if r >= n] for n in (1, 2)}
    return [
        f"countIf({_in(final, PENDING)})",
        *(f"countIf({_in(final, members)})" for members in CLASSES.values()),
        f"countIf({delivered} AND {engaged})",
        f"countIf({delivered} AND {clicked})",
        f"countIf({_in(final, stage_from[1])})",
        f"countIf({_in(final, stage_from[2])})",
        f"countIf({delivered} AND {sql_flag('spam_reported')})",
        f"countIf({delivered} AND {sql_flag('unsubscribed')})",
        f"countIf({_in(final, CLASSES['bounced'])} AND {sql_flag('blocked')})",
        f"countIf({_in(final, stage_from[2])} AND {sql_flag('deferred')})",
    ]


# ---------------------------------------------------------------- human units

_UNITS: tuple[tuple[str, float], ...] = (("s", 1e3), ("min", 60e3), ("h", 3600e3), ("d", 86400e3))


def human_duration(ms: float | None) -> str:
    """A duration for people: whole ms below a second, else one decimal of the largest unit (s, min, h,
    d) the value reaches, moving up when the rounded figure would reach the next unit (59,999 ms is
    "1.0 min", not "60.0 s"); "-" for None."""
    if ms is None:
        return "-"
    if round(ms) < 1000:
        return f"{round(ms)} ms"
    index = max(i for i, (_, size) in enumerate(_UNITS) if i == 0 or ms >= size)
    name, size = _UNITS[index]
    if index + 1 < len(_UNITS) and round(ms / size, 1) >= _UNITS[index + 1][1] / size:
        name, size = _UNITS[index + 1]  # 59,999 ms would show as "60.0 s"
    return f"{ms / size:,.1f} {name}"


def human_rate(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def figures_json(figures: Figures) -> dict[str, object]:
    """The figures as the API and ``report --json`` give them (exact counts and float rates)."""
    return {
        "messages": figures.outcomes,
        "pending": figures.pending,
        "counts": figures.counts(),
        "rates": figures.rates(),
        "funnel": [[stage, n] for stage, n in figures.funnel()],
    }


def figures_of(
    statuses: Mapping[str, Iterable[EmailStatus | str]],
    clicks: Iterable[str] = (),
    flags: Mapping[str, Seen] | None = None,
) -> Figures:
    """Figures of messages given as id -> statuses seen, and the ids with a click (or each id's ``Seen``)."""
    clicked = set(clicks)
    seen = flags or {}
    return tally(
        (final_status(s), seen.get(mid) or Seen(clicked=mid in clicked)) for mid, s in statuses.items()
    )
