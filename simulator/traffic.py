"""Realistic webhook traffic with known ground truth: what the demo and integration tests post at ingest.

Pure (stdlib + orjson, plus the stdlib-only ``schemas.status`` and ``schemas.outcomes``) and
deterministic: ``generate(n, seed)`` always returns the same payloads, in the same order, with the same
truth.

What is generated, per message (one recipient of one send request):

- an intended outcome drawn from ``OUTCOME_RATES`` for its provider; the outcome is the label the
  generator chose (``Truth.status``), not something computed from the events;
- the provider's own event sequence for that outcome, with event times increasing along the lifecycle:

  * SendGrid Event Webhook: ``processed`` -> (``deferred`` attempt "1", "2", ...) -> ``delivered`` ->
    ``open``... (machine opens flagged ``sg_machine_open``) / ``click``... (with ``url``), or ``bounce``
    (``type`` "bounce" or "blocked", with a ``bounce_classification``; sometimes asynchronously after
    ``delivered`` and then sometimes without ``sg_message_id``) or ``dropped``; rarely ``unsubscribe`` /
    ``spamreport``. ``SignalRates`` sets how often (blocks, deferrals, spam reports, unsubscribes).
    Timestamps are whole Unix seconds. SendGrid has no SENT, SCHEDULED or CANCELED: its in-flight
    messages are QUEUED (processed, maybe deferred), and a CANCELED or INBOUND draw is redrawn
    (``OUTCOME_RATES`` is renormalised).
  * Twilio Email API status CloudEvents: (SCHEDULED ->) QUEUED -> SENT -> DELIVERED -> OPENED..., or
    UNDELIVERED (after SENT, or asynchronously after DELIVERED), FAILED (after QUEUED), CANCELED (after
    SCHEDULED); INBOUND messages have a single INBOUND event. ``updatedAt`` has milliseconds and 'Z'.

- Send requests group recipients: a SendGrid send shares one X-Message-Id (``smtp-id``) across its
  recipients, a Twilio operation shares ``operationId``, sender and tags.
- Message ids are what ``schemas.sendgrid`` / ``schemas.twilio`` derive: ``<X-Message-Id>:<recipient
  lowercased>`` for SendGrid, the ``comms_email_...`` id for Twilio.
- No two distinct events of one message share (message_id, status or kind, occurred_at[, attempt, url]),
  the downstream semantic dedupe key: repeated opens and clicks are at least one second (for SendGrid one
  whole second) apart.
- ``Truth.events`` lists every distinct event as (intended status, or SendGrid event name for
  non-status events; event time): the expected ``email_events`` rows, recorded as generated, not parsed.

Deliveries: a ``duplicate_rate`` share of distinct events is posted more than once (mostly one extra copy,
some two or three; retries arrive later). Twilio copies are exact (same CloudEvent ``id``); a SendGrid
copy is exact or, for a share of them, carries a new ``sg_event_id`` (the same event resent under another
id, docs/providers.md). Each stream is ordered by arrival time (event time + provider latency), then every
delivery's position is jittered by less than ``max_displacement`` places, so statuses arrive out of order
(opens before delivered included). The streams are cut into POST bodies: SendGrid 50-500 events, Twilio
1-100.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from schemas import outcomes
from schemas.status import TERMINAL_STATUSES, EmailStatus

Payload = dict[str, Any]

SENDGRID: Final = "sendgrid"
TWILIO: Final = "twilio"
# Default start of the traffic: fixed, so that a seed alone determines the output. Pass ``start`` for "now".
DEFAULT_START: Final = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

_S = EmailStatus
# Twilio: the intended outcome mix. SendGrid: the same, without the statuses its Event Webhook cannot
# report (SENT folds into the in-flight QUEUED share; CANCELED and INBOUND are redrawn).
_TWILIO_RATES: Final[dict[EmailStatus, float]] = {
    _S.DELIVERED: 0.61,
    _S.OPENED: 0.20,
    _S.UNDELIVERED: 0.08,
    _S.FAILED: 0.03,
    _S.CANCELED: 0.02,
    _S.QUEUED: 0.025,
    _S.SENT: 0.025,
    _S.INBOUND: 0.01,
}
_SENDGRID_WEIGHTS: Final[dict[EmailStatus, float]] = {
    _S.DELIVERED: 0.61,
    _S.OPENED: 0.20,
    _S.UNDELIVERED: 0.08,
    _S.FAILED: 0.03,
    _S.QUEUED: 0.05,
}
OUTCOME_RATES: Final[Mapping[str, Mapping[EmailStatus, float]]] = {
    TWILIO: _TWILIO_RATES,
    SENDGRID: {s: w / sum(_SENDGRID_WEIGHTS.values()) for s, w in _SENDGRID_WEIGHTS.items()},
}
# Final outbound outcomes (terminal, INBOUND excluded): the messages with an outcome (schemas.outcomes).
FINAL_OUTBOUND: Final[frozenset[EmailStatus]] = TERMINAL_STATUSES - {_S.INBOUND}

# Shape of the lifecycles (probabilities).
_TWILIO_SCHEDULED = 0.08  # share of Twilio operations sent with schedule.sendAt
_SG_ASYNC_BOUNCE = 0.30  # SendGrid UNDELIVERED: bounce after a delivered event
_SG_NO_MESSAGE_ID = 0.5  # async SendGrid bounces that lack sg_message_id
_SG_BLOCK_WITHOUT_STATUS = 0.3  # blocks that lack `status` (a known SendGrid trap, docs/providers.md)
_TWILIO_ASYNC_BOUNCE = 0.35  # Twilio UNDELIVERED: after DELIVERED
_SG_NEW_EVENT_ID = 0.3  # SendGrid duplicates resent under a new sg_event_id
_OPEN_COUNTS: Final = ((1, 0.50), (2, 0.75), (3, 0.90), (4, 1.0))  # cumulative
_MACHINE_OPEN = 0.3  # OPENED messages whose first open is a machine prefetch (always for icloud.com)
_CLICK_AFTER_OPEN = 0.35


@dataclass(frozen=True, slots=True)
class SignalRates:
    """How often SendGrid traffic carries each deliverability signal (Twilio's Email API reports none)."""

    blocked: float = 0.25  # of UNDELIVERED messages: a block (at most 1 - the 30% asynchronous bounces)
    spam_report: float = 0.002  # of messages that stay delivered: reported as spam after delivery
    unsubscribe: float = 0.01  # of clicks: followed by an unsubscribe (an unsubscribe link always is)
    deferral: float = 0.07  # of messages delivered, or blocked: deferred first (1 to 3 attempts)
    deferral_bounced: float = 0.25  # of other bounced messages: deferred first
    deferral_in_flight: float = 0.5  # of messages still in flight (QUEUED): deferred so far

    def __post_init__(self) -> None:
        shares = (self.blocked, self.spam_report, self.unsubscribe, self.deferral, self.deferral_bounced,
                  self.deferral_in_flight)  # fmt: skip
        if not all(0.0 <= r <= 1.0 for r in shares) or self.blocked + _SG_ASYNC_BOUNCE > 1.0:
            raise ValueError("signal rates must be within [0, 1], blocked at most 0.7")


_RECIPIENT_DOMAINS: Final = (
    ("gmail.com", 34),
    ("yahoo.com", 10),
    ("outlook.com", 11),
    ("hotmail.com", 5),
    ("icloud.com", 9),
    ("aol.com", 2),
    ("comcast.net", 2),
    ("globex.com", 6),
    ("initech.io", 5),
    ("umbrella-corp.com", 4),
    ("hooli.xyz", 4),
    ("stark-industries.net", 3),
)
_FIRST = (
    "ana", "ben", "chloe", "david", "emma", "farid", "grace", "hiro", "isabel", "jamal", "kate", "liam",
    "maria", "noah", "olga", "priya", "quinn", "rafael", "sofia", "tom", "uma", "victor", "wei", "yusuf",
)  # fmt: skip
_LAST = (
    "smith", "garcia", "nguyen", "mueller", "rossi", "kowalski", "tanaka", "okafor", "silva", "cohen",
    "johnson", "dubois", "larsen", "patel", "novak", "kim", "moreau", "fischer", "haddad", "ivanova",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Brand:
    domain: str
    name: str
    key: str
    mailboxes: tuple[str, ...]


_BRANDS: Final = (
    _Brand("acme-shop.com", "Acme Shop", "acme", ("orders", "news", "no-reply")),
    _Brand("mail.northwind.io", "Northwind", "northwind", ("hello", "billing")),
    _Brand("notify.contosobank.com", "Contoso Bank", "contoso", ("alerts", "security")),
)


@dataclass(frozen=True, slots=True)
class _Campaign:
    name: str
    category: str | tuple[str, ...]
    template: str
    urls: tuple[str, ...]


_CAMPAIGNS: Final = (
    _Campaign("welcome-2026", "welcome", "welcome.v4", ("https://{d}/start", "https://{d}/account/profile")),
    _Campaign("order-shipped", "transactional", "order-shipped.v3", ("https://{d}/orders/track",)),
    _Campaign("password-reset", ("transactional", "security"), "password-reset.v2", ("https://{d}/reset",)),
    _Campaign(
        "newsletter-2026-11",
        "newsletter",
        "newsletter.v12",
        ("https://{d}/blog/winter-release", "https://{d}/events", "https://{d}/unsubscribe"),
    ),
    _Campaign(
        "black-friday-2026", ("marketing", "promo"), "promo.v7", ("https://{d}/deals", "https://{d}/cart")
    ),
)
_HUMAN_AGENTS: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
)
_DELIVERED_RESPONSES: Final = (
    "250 2.0.0 OK  {ts} a640c23a62f3a-7fe1c9bd4fbsi123456 - gsmtp",
    "250 ok dirdel",
    "250 2.6.0 <{mid}> [InternalId=4123] Queued mail for delivery",
    "250 2.0.0 Ok: queued as 4Xk9Zt2rGPz1",
)
_DEFERRALS: Final = (
    "451 4.7.650 The mail server [149.72.1.1] has been temporarily rate limited due to IP reputation.",
    "421 4.7.0 [TSS04] Messages from 149.72.1.1 temporarily deferred due to unexpected volume",
    "450 4.2.1 The user you are trying to contact is receiving mail too quickly.",
    "451 Temporary local problem - please try later",
)
_BOUNCES: Final = (
    ("550 5.1.1 The email account that you tried to reach does not exist.", "5.1.1", "Invalid Address"),
    ("552 5.2.2 The recipient's inbox is out of storage space.", "5.2.2", "Mailbox Unavailable"),
    ("550 5.1.1 <{email}>: Recipient address rejected: User unknown", "5.1.1", "Invalid Address"),
    ("554 5.4.14 Hop count exceeded - possible mail loop", "5.4.14", "Technical Failure"),
)
_BLOCKS: Final = (
    ("550 5.7.1 Our system has detected that this message is likely unsolicited mail.", "5.7.1", "Content"),
    ("554 5.7.1 Service unavailable; Client host [149.72.1.1] blocked using Spamhaus", "5.7.1", "Reputation"),
    ("553 5.7.1 [BL21] Connections will not be accepted from 149.72.1.1", "5.7.1", "Reputation"),
    ("421 4.7.0 Too many connections, blocked", "4.7.0", "Frequency or Volume Too High"),
)
_DROPS: Final = ("Bounced Address", "Unsubscribed Address", "Spam Reporting Address", "Invalid")


@dataclass(frozen=True, slots=True)
class Truth:
    """What the generator made of one message: the expected downstream state."""

    status: EmailStatus  # the intended outcome (the generator's label)
    first_at: dict[EmailStatus, datetime]  # earliest event time of each status generated (UTC, ms)
    opens: int  # distinct open events (machine opens included)
    distinct_events: int  # distinct events, non-status ones included: the message's email_events rows
    deliveries: int  # events posted, duplicates included
    provider: str  # "sendgrid" or "twilio"
    recipient: str  # lower-cased, as the canonical event names it
    machine_opens: int = 0  # opens flagged sg_machine_open
    # Every distinct event as (label, event time): the label is the status the generator meant
    # (EmailStatus value) for a status event, else the SendGrid event name ("deferred", "click",
    # "unsubscribe", "spamreport"). In generation order; len(events) == distinct_events.
    events: tuple[tuple[str, datetime], ...] = ()
    blocked: bool = False  # its bounce is a block (SendGrid bounce type "blocked")
    bounce_classification: str | None = None  # SendGrid's, of its bounce


@dataclass(frozen=True, slots=True)
class Traffic:
    """The POST bodies to send, in order, and the truth they carry."""

    sendgrid_batches: list[list[Payload]]
    twilio_batches: list[list[Payload]]
    truth: dict[str, Truth]
    seed: int
    start: datetime

    @property
    def deliveries(self) -> int:
        """Events posted in all batches, duplicates included."""
        return sum(map(len, self.sendgrid_batches)) + sum(map(len, self.twilio_batches))


def expected_shares(twilio_share: float = 0.5) -> dict[EmailStatus, float]:
    """Expected share of each intended outcome among all messages, for ``generate(..., twilio_share)``."""
    shares: dict[EmailStatus, float] = {}
    for provider, weight in ((TWILIO, twilio_share), (SENDGRID, 1.0 - twilio_share)):
        for status, rate in OUTCOME_RATES[provider].items():
            shares[status] = shares.get(status, 0.0) + weight * rate
    return {s: shares[s] for s in EmailStatus if shares.get(s)}


def status_counts(truth: Mapping[str, Truth]) -> dict[EmailStatus, int]:
    """Messages per intended status (statuses with no message are left out)."""
    counts = dict.fromkeys(EmailStatus, 0)
    for t in truth.values():
        counts[t.status] += 1
    return {s: n for s, n in counts.items() if n}


def delivery_rate(truth: Mapping[str, Truth]) -> float:
    """The delivered rate of ``schemas.outcomes`` over the intended statuses: DELIVERED or OPENED over
    messages with an outcome (DELIVERED, OPENED, UNDELIVERED, FAILED, CANCELED); in-flight (SCHEDULED,
    QUEUED, SENT) and INBOUND messages count in neither part. 0.0 when no message has an outcome."""
    return outcomes.tally((t.status, False) for t in truth.values()).rates()["delivered"] or 0.0


def generate(
    messages: int,
    seed: int,
    *,
    twilio_share: float = 0.5,
    duplicate_rate: float = 0.15,
    start: datetime | None = None,
    max_displacement: int = 300,
    signals: SignalRates | None = None,
) -> Traffic:
    """Generate ``messages`` messages' webhook traffic and its truth; the same arguments give the same result.

    ``twilio_share``: share of messages sent through Twilio (the rest through SendGrid).
    ``duplicate_rate``: share of distinct events posted more than once.
    ``start``: time of the first send (timezone-aware; default ``DEFAULT_START``).
    ``max_displacement``: bound on how far (in places) a delivery moves from its arrival-time position.
    ``signals``: rates of blocks, deferrals, spam reports and unsubscribes (default ``SignalRates()``).
    """
    if messages < 0:
        raise ValueError("messages must be >= 0")
    if not 0.0 <= twilio_share <= 1.0 or not 0.0 <= duplicate_rate <= 1.0:
        raise ValueError("twilio_share and duplicate_rate must be within [0, 1]")
    if max_displacement < 1:
        raise ValueError("max_displacement must be >= 1")
    start = DEFAULT_START if start is None else start
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    gen = _Generator(seed, start, duplicate_rate, signals or SignalRates())
    for _ in range(messages):
        gen.message(TWILIO if gen.rng.random() < twilio_share else SENDGRID)
    return Traffic(
        sendgrid_batches=gen.batches(gen.sendgrid_stream, 50, 500, max_displacement),
        twilio_batches=gen.batches(gen.twilio_stream, 1, 100, max_displacement),
        truth={mid: mt.freeze() for mid, mt in gen.truth.items()},
        seed=seed,
        start=start.astimezone(UTC),
    )


# --- internals -------------------------------------------------------------------------------------------

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


def _at(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _iso(ms: int) -> str:
    return _at(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_STATUSES: Final = tuple(EmailStatus)


@dataclass(slots=True)
class _MessageTruth:
    status: EmailStatus
    provider: str
    recipient: str
    first_at: dict[EmailStatus, int] = field(default_factory=dict)
    opens: int = 0
    machine_opens: int = 0
    distinct: int = 0
    deliveries: int = 0
    events: list[tuple[str, int]] = field(default_factory=list)
    blocked: bool = False
    bounce_classification: str | None = None

    def freeze(self) -> Truth:
        return Truth(
            status=self.status,
            first_at={s: _at(self.first_at[s]) for s in _STATUSES if s in self.first_at},
            opens=self.opens,
            distinct_events=self.distinct,
            deliveries=self.deliveries,
            provider=self.provider,
            recipient=self.recipient,
            machine_opens=self.machine_opens,
            events=tuple((label, _at(ms)) for label, ms in self.events),
            blocked=self.blocked,
            bounce_classification=self.bounce_classification,
        )


@dataclass(slots=True)
class _Send:
    """One send request: SendGrid mail/send (one X-Message-Id) or Twilio POST /v1/Emails (one operation)."""

    provider: str
    t0: int
    capacity: int
    brand: _Brand
    campaign: _Campaign
    sender: str
    ident: str  # X-Message-Id or operation id
    smtp_host: str
    filter_host: str
    scheduled_for: int | None = None
    recipients: list[str] = field(default_factory=list)


# (arrival ms, sequence number, payload)
_Delivery = tuple[int, int, Payload]


class _Generator:
    def __init__(self, seed: int, start: datetime, duplicate_rate: float, signals: SignalRates) -> None:
        self.rng = random.Random(seed)
        self.signals = signals
        self.start_ms = (start - _EPOCH) // _MS
        self.duplicate_rate = duplicate_rate
        self.clock = self.start_ms
        self.bursting = False
        self.seq = itertools.count()
        self.open_sends: dict[tuple[str, bool], _Send] = {}
        self.truth: dict[str, _MessageTruth] = {}
        self.sendgrid_stream: list[_Delivery] = []
        self.twilio_stream: list[_Delivery] = []
        self.outcomes = {
            p: (list(rates), list(itertools.accumulate(rates.values()))) for p, rates in OUTCOME_RATES.items()
        }
        domains, weights = zip(*_RECIPIENT_DOMAINS, strict=True)
        self.domains: tuple[str, ...] = domains
        self.domain_cum = list(itertools.accumulate(weights))
        self.iso_seconds: dict[int, str] = {}

    def iso(self, ms: int) -> str:
        """``_iso(ms)``, with the whole-second part cached (events cluster in time)."""
        seconds, millis = divmod(ms, 1000)
        prefix = self.iso_seconds.get(seconds)
        if prefix is None:
            prefix = self.iso_seconds[seconds] = _iso(seconds * 1000)[:-5]
        return f"{prefix}.{millis:03d}Z"

    # -- random helpers --

    def between(self, lo: int, hi: int) -> int:
        return lo + int(self.rng.random() * (hi - lo + 1))  # randint's distribution, a third of its cost

    def lognormal(self, median_ms: float, sigma: float, lo: int, hi: int) -> int:
        value = int(self.rng.lognormvariate(math.log(median_ms), sigma))
        return min(max(value, lo), hi)

    def b64id(self) -> str:
        return base64.b64encode(self.rng.getrandbits(128).to_bytes(16, "big")).decode()

    def hex32(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def ip(self, first: int | None = None) -> str:
        r = self.rng.getrandbits(32)
        a = first if first is not None else 11 + (r >> 24) % 200
        return f"{a}.{(r >> 16) & 255}.{(r >> 8) & 255}.{1 + (r & 255) % 254}"

    def draw_outcome(self, provider: str) -> EmailStatus:
        statuses, cum = self.outcomes[provider]
        return statuses[min(bisect.bisect_right(cum, self.rng.random() * cum[-1]), len(statuses) - 1)]

    def person(self) -> tuple[str, str, str]:
        """(first, last, address) of a random recipient."""
        rng = self.rng
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        domain = self.domains[bisect.bisect_right(self.domain_cum, rng.random() * self.domain_cum[-1])]
        style = rng.random()
        if style < 0.4:
            local = f"{first}.{last}"
        elif style < 0.65:
            local = f"{first}{last}{rng.randint(1, 99)}"
        elif style < 0.8:
            local = f"{first[0]}{last}"
        elif style < 0.9:
            local = f"{first}_{last}{rng.randint(70, 99)}"
        else:
            local = f"{first}.{last}+{rng.choice(('news', 'shop', 'promo'))}"
        return first, last, f"{local}@{domain}"

    def next_t0(self) -> int:
        """Send times: a bursty arrival process (campaign blasts between quieter stretches)."""
        if self.rng.random() < 0.02:
            self.bursting = not self.bursting
        self.clock += int(self.rng.expovariate(1.0) * (25 if self.bursting else 450))
        return self.clock

    # -- sends and messages --

    def message(self, provider: str) -> None:
        outcome = self.draw_outcome(provider)
        if outcome is _S.INBOUND:
            self.twilio_inbound(self.next_t0())
            return
        scheduled = provider == TWILIO and (outcome is _S.CANCELED or self.rng.random() < _TWILIO_SCHEDULED)
        send = self.open_sends.get((provider, scheduled))
        if send is None or len(send.recipients) >= send.capacity:
            send = self.new_send(provider, scheduled)
            self.open_sends[provider, scheduled] = send
        while True:
            first, last, address = self.person()
            if address not in send.recipients:
                break
        send.recipients.append(address)
        if provider == SENDGRID:
            self.sendgrid_message(send, len(send.recipients) - 1, address, outcome)
        else:
            self.twilio_message(send, f"{first.title()} {last.title()}", address, outcome)

    def new_send(self, provider: str, scheduled: bool) -> _Send:
        rng = self.rng
        r = rng.random()
        capacity = 1 if r < 0.75 else rng.randint(2, 4) if r < 0.93 else rng.randint(5, 25)
        brand = rng.choice(_BRANDS)
        t0 = self.next_t0()
        if provider == SENDGRID:
            ident = base64.urlsafe_b64encode(rng.getrandbits(128).to_bytes(16, "big")).decode().rstrip("=")
        else:
            ident = f"comms_operation_{self.hex32()}"
        pod = f"{rng.getrandbits(36):09x}"
        return _Send(
            provider=provider,
            t0=t0,
            capacity=capacity,
            brand=brand,
            campaign=rng.choice(_CAMPAIGNS),
            sender=f"{rng.choice(brand.mailboxes)}@{brand.domain}",
            ident=ident,
            smtp_host=f"ismtpd-{rng.randint(1, 999):04d}",
            filter_host=f"filterdrecv-{pod[:6]}-{pod[6:]}{rng.randint(100, 999)}",
            scheduled_for=t0 + self.between(10 * 60_000, 3 * 3600_000) if scheduled else None,
        )

    def new_truth(self, message_id: str, status: EmailStatus, provider: str, recipient: str) -> _MessageTruth:
        assert message_id not in self.truth, message_id
        mt = _MessageTruth(status=status, provider=provider, recipient=recipient)
        self.truth[message_id] = mt
        return mt

    def opens_count(self) -> int:
        r = self.rng.random()
        return next(n for n, cum in _OPEN_COUNTS if r < cum)

    # -- SendGrid --

    def sendgrid_message(self, send: _Send, index: int, address: str, outcome: EmailStatus) -> None:
        rng = self.rng
        # SendGrid reports the address as the sender wrote it; canonical ids lower-case it.
        wire = (
            address
            if rng.random() < 0.95
            else address.split("@")[0].title() + "@" + address.split("@")[1].title()
        )
        xid = send.ident
        mt = self.new_truth(f"{xid}:{address}", outcome, SENDGRID, address)
        sg_message_id = f"{xid}.{send.filter_host}-1-{rng.getrandbits(32):08X}-{rng.randint(1, 99)}.{index}"
        smtp_id = f"<{xid}@{send.smtp_host}>"
        campaign = send.campaign
        category = campaign.category
        sender_ip = self.ip(149)
        emit = self.emit

        def event(name: str, ms: int, smtp: bool = True) -> Payload:
            ev: Payload = {"email": wire, "timestamp": ms // 1000, "event": name}
            if smtp:  # engagement events carry no smtp-id
                ev["smtp-id"] = smtp_id
            ev["sg_event_id"] = self.b64id()
            ev["sg_message_id"] = sg_message_id
            ev["category"] = category if isinstance(category, str) else list(category)
            ev["campaign"] = campaign.name
            return ev

        def status_event(name: str, canonical: EmailStatus, ms: int, /, **extra: Any) -> None:
            ev = event(name, ms)
            ev.update(extra)
            emit(mt, SENDGRID, ms // 1000 * 1000, ev, canonical)

        t = send.t0 + self.between(100, 2500)
        status_event("processed", _S.QUEUED, t, pool={"name": f"{send.brand.key}-pool", "id": 210})
        if outcome is _S.FAILED:
            status_event(
                "dropped", _S.FAILED, t + self.between(0, 1500), reason=rng.choice(_DROPS), status="5.0.0"
            )
            return
        undelivered = outcome is _S.UNDELIVERED
        kind = rng.random() if undelivered else 1.0
        rates = self.signals
        blocked, async_bounce = kind < rates.blocked, rates.blocked <= kind < rates.blocked + _SG_ASYNC_BOUNCE
        deferral_chance = {_S.QUEUED: rates.deferral_in_flight}.get(
            outcome, rates.deferral_bounced if undelivered and not blocked else rates.deferral
        )
        if rng.random() < deferral_chance:
            for attempt in range(1, rng.randint(1, 3) + 1):
                t += self.between(20_000, 600_000) * attempt
                ev = event("deferred", t)
                ev.update(response=rng.choice(_DEFERRALS), attempt=str(attempt), ip=sender_ip, tls=1)
                emit(mt, SENDGRID, t // 1000 * 1000, ev, None)
        if outcome is _S.QUEUED:
            return
        if undelivered and not async_bounce:
            t += self.lognormal(4000, 0.8, 300, 60_000)
            reason, smtp_status, classification = rng.choice(_BLOCKS if blocked else _BOUNCES)
            extra: Payload = {"reason": reason.format(email=wire)}
            if not (blocked and rng.random() < _SG_BLOCK_WITHOUT_STATUS):
                extra["status"] = smtp_status
            extra.update(type="blocked" if blocked else "bounce", bounce_classification=classification)
            mt.blocked, mt.bounce_classification = blocked, classification
            status_event("bounce", _S.UNDELIVERED, t, **extra)
            return
        t += self.lognormal(3000, 0.9, 200, 120_000)
        response = rng.choice(_DELIVERED_RESPONSES).format(ts=t // 1000, mid=smtp_id.strip("<>"))
        status_event("delivered", _S.DELIVERED, t, response=response, ip=sender_ip, tls=1)
        delivered = t
        if async_bounce:
            t += self.between(2 * 60_000, 90 * 60_000)
            reason, smtp_status, classification = rng.choice(_BOUNCES)
            ev = event("bounce", t)
            if rng.random() < _SG_NO_MESSAGE_ID:  # missing, empty or null on asynchronous bounces
                how = rng.randrange(3)
                if how == 0:
                    del ev["sg_message_id"]
                else:
                    ev["sg_message_id"] = "" if how == 1 else None
            ev.update(
                reason=reason.format(email=wire),
                status=smtp_status,
                type="bounce",
                bounce_classification=classification,
            )
            mt.bounce_classification = classification
            emit(mt, SENDGRID, t // 1000 * 1000, ev, _S.UNDELIVERED)
            return
        if outcome is _S.OPENED:
            self.sendgrid_engagement(mt, send, event, delivered, address)
        if rng.random() < self.signals.spam_report:
            t = max(t, delivered) + self.between(60_000, 3600_000)
            ev = event("spamreport", t, smtp=False)
            del ev["category"], ev["campaign"]
            emit(mt, SENDGRID, t // 1000 * 1000, ev, None)

    def sendgrid_engagement(
        self, mt: _MessageTruth, send: _Send, event: Callable[..., Payload], delivered: int, address: str
    ) -> None:
        rng = self.rng
        domain = address.rsplit("@", 1)[1]
        machine = domain == "icloud.com" or rng.random() < _MACHINE_OPEN
        last_open = last_click = -1
        t = delivered
        urls = [u.format(d=send.brand.domain) for u in send.campaign.urls]
        for n in range(self.opens_count()):
            if n == 0 and machine:
                candidate = delivered + self.between(1000, 90_000)
            elif n == 0 or (n == 1 and machine):
                candidate = t + self.lognormal(8 * 60_000, 1.3, 5000, 8 * 3600_000)
            else:
                candidate = t + self.lognormal(20 * 60_000, 1.2, 1000, 6 * 3600_000)
            t = max(candidate, (last_open // 1000 + 1) * 1000)  # repeated opens: distinct whole seconds
            last_open = t
            ev = event("open", t, smtp=False)
            is_machine = n == 0 and machine
            if is_machine:
                ev.update(sg_machine_open=True, useragent="Mozilla/5.0", ip=self.ip(17))
            else:
                ev.update(sg_machine_open=False, useragent=rng.choice(_HUMAN_AGENTS), ip=self.ip())
            self.emit(mt, SENDGRID, t // 1000 * 1000, ev, _S.OPENED)
            mt.machine_opens += is_machine
            if not is_machine and rng.random() < _CLICK_AFTER_OPEN:
                for _ in range(rng.randint(1, 2)):
                    click = max(
                        t + self.lognormal(15_000, 1.0, 1000, 600_000), (last_click // 1000 + 1) * 1000
                    )
                    last_click = click
                    index = rng.randrange(len(urls))
                    ev = event("click", click, smtp=False)
                    ev.update(
                        useragent=rng.choice(_HUMAN_AGENTS),
                        ip=self.ip(),
                        url=f"{urls[index]}?utm_source=sendgrid&utm_campaign={send.campaign.name}",
                        url_offset={"index": index, "type": "html"},
                    )
                    self.emit(mt, SENDGRID, click // 1000 * 1000, ev, None)
                    if urls[index].endswith("/unsubscribe") or rng.random() < self.signals.unsubscribe:
                        at = click + self.between(2000, 60_000)
                        unsub = event("unsubscribe", at, smtp=False)
                        self.emit(mt, SENDGRID, at // 1000 * 1000, unsub, None)
                        return

    # -- Twilio --

    def twilio_message(self, send: _Send, name: str, address: str, outcome: EmailStatus) -> None:
        rng = self.rng
        email_id = f"comms_email_{self.hex32()}"
        mt = self.new_truth(email_id, outcome, TWILIO, address)
        created = self.iso(send.t0)
        tags = {
            "campaign": send.campaign.name,
            "brand": send.brand.key,
            "template": send.campaign.template,
            "env": "prod",
        }
        data: Payload = {
            "id": email_id,
            "status": "",
            "from": {"address": send.sender, "name": send.brand.name},
            "to": [{"address": address, "name": name}],
            "tags": tags,
            "operationId": send.ident,
            "scheduledFor": None if send.scheduled_for is None else self.iso(send.scheduled_for),
            "createdAt": created,
            "updatedAt": "",
        }

        def status_event(status: EmailStatus, ms: int) -> None:
            self.twilio_event(mt, email_id, data, status, ms)

        if send.scheduled_for is not None:
            t = send.t0 + self.between(30, 400)
            status_event(_S.SCHEDULED, t)
            if outcome is _S.CANCELED:
                status_event(
                    _S.CANCELED, t + self.between(20_000, max(20_000, send.scheduled_for - t - 1000))
                )
                return
            t = send.scheduled_for + self.between(0, 3000)
        else:
            t = send.t0 + self.between(40, 900)
        status_event(_S.QUEUED, t)
        if outcome is _S.QUEUED:
            return
        if outcome is _S.FAILED:
            status_event(_S.FAILED, t + self.between(100, 5000))
            return
        t += self.lognormal(1500, 0.7, 100, 60_000)
        status_event(_S.SENT, t)
        if outcome is _S.SENT:
            return
        async_bounce = outcome is _S.UNDELIVERED and rng.random() < _TWILIO_ASYNC_BOUNCE
        if outcome is _S.UNDELIVERED and not async_bounce:
            status_event(_S.UNDELIVERED, t + self.lognormal(6000, 0.8, 300, 120_000))
            return
        t += self.lognormal(3000, 0.9, 150, 120_000)
        status_event(_S.DELIVERED, t)
        if async_bounce:
            status_event(_S.UNDELIVERED, t + self.between(2 * 60_000, 90 * 60_000))
            return
        if outcome is _S.OPENED:
            apple = address.endswith("@icloud.com") or rng.random() < _MACHINE_OPEN
            for n in range(self.opens_count()):
                if n == 0 and apple:  # Apple Mail Privacy Protection prefetch, seconds after delivery
                    gap = self.between(1000, 90_000)
                elif n == 0 or (n == 1 and apple):
                    gap = self.lognormal(8 * 60_000, 1.3, 5000, 8 * 3600_000)
                else:
                    gap = self.lognormal(20 * 60_000, 1.2, 1000, 6 * 3600_000)
                t += max(gap, 1000)
                status_event(_S.OPENED, t)

    def twilio_inbound(self, t0: int) -> None:
        rng = self.rng
        brand = rng.choice(_BRANDS)
        first, last, address = self.person()
        email_id = f"comms_email_{self.hex32()}"
        ours = f"{rng.choice(('support', 'help', 'reply'))}@{brand.domain}"
        mt = self.new_truth(email_id, _S.INBOUND, TWILIO, ours)
        data: Payload = {
            "id": email_id,
            "status": "",
            "from": {"address": address, "name": f"{first.title()} {last.title()}"},
            "to": [{"address": ours}],
            "tags": {},
            "createdAt": self.iso(t0),
            "updatedAt": "",
        }
        self.twilio_event(mt, email_id, data, _S.INBOUND, t0 + self.between(0, 1500))

    def twilio_event(
        self, mt: _MessageTruth, email_id: str, data: Payload, status: EmailStatus, ms: int
    ) -> None:
        at = self.iso(ms)
        snapshot = dict(data, to=[dict(a) for a in data["to"]], tags=dict(data["tags"]))
        snapshot["from"] = dict(data["from"])
        snapshot["status"] = status.value
        snapshot["updatedAt"] = at
        ev: Payload = {
            "specversion": "1.0",
            "type": f"com.twilio.comms-api.email.{status.value.lower()}",
            "source": f"/v1/Emails/{email_id}",
            "id": f"EZ{self.hex32()}",
            "time": at,
            "datacontenttype": "application/json",
            "data": snapshot,
        }
        self.emit(mt, TWILIO, ms, ev, status)

    # -- deliveries --

    def emit(
        self, mt: _MessageTruth, provider: str, at_ms: int, payload: Payload, status: EmailStatus | None
    ) -> None:
        """Record one distinct event (reported time ``at_ms``) and post it, maybe more than once."""
        rng = self.rng
        mt.distinct += 1
        mt.events.append((status.value if status is not None else str(payload["event"]), at_ms))
        if status is not None:
            previous = mt.first_at.get(status)
            if previous is None or at_ms < previous:
                mt.first_at[status] = at_ms
            if status is _S.OPENED:
                mt.opens += 1
        sendgrid = provider == SENDGRID
        stream = self.sendgrid_stream if sendgrid else self.twilio_stream
        # SendGrid flushes batches every 30 s; Event Streams delivers within seconds.
        arrival = at_ms + (self.between(500, 30_000) if sendgrid else self.between(80, 3000))
        stream.append((arrival, next(self.seq), payload))
        mt.deliveries += 1
        if rng.random() >= self.duplicate_rate:
            return
        r = rng.random()
        copies = 1 if r < 0.8 else 2 if r < 0.95 else 3
        raw = orjson.dumps(payload)
        for _ in range(copies):
            arrival += 1000 + int(rng.expovariate(1.0) * (120_000 if sendgrid else 20_000))  # retry backoff
            copy: Payload = orjson.loads(raw)
            if sendgrid and rng.random() < _SG_NEW_EVENT_ID:
                copy["sg_event_id"] = self.b64id()
            stream.append((arrival, next(self.seq), copy))
            mt.deliveries += 1

    def batches(self, stream: list[_Delivery], lo: int, hi: int, displacement: int) -> list[list[Payload]]:
        """Order by arrival, jitter each position by < ``displacement`` places, cut into POST bodies."""
        stream.sort(key=lambda d: (d[0], d[1]))
        rng = self.rng
        keys = [i + rng.random() * displacement for i in range(len(stream))]
        order = sorted(range(len(stream)), key=keys.__getitem__)
        payloads = [stream[i][2] for i in order]
        out: list[list[Payload]] = []
        pos, total = 0, len(payloads)
        while pos < total:
            rest = total - pos
            size = rng.randint(lo, hi)
            if rest - size < lo:  # never leave a tail smaller than a minimal body
                size = rest if rest <= hi else rest - lo
            out.append(payloads[pos : pos + size])
            pos += size
        return out
