"""The ingest ASGI app. ``create_app`` is the composition root's only way to build it.

Batch policy (event endpoints): each element is validated on its own. Valid events are published to
the status topic, invalid ones to the dead-letter topic with their problems, and only after Kafka
acknowledged all of them is the request answered: 200 listing any rejected elements, or 422 when no
element was valid. A body that is not a JSON array is 400; Kafka not acknowledging in time, or ingest
already holding its cap of bytes for Kafka (nothing published), is 503 with Retry-After, so the
provider retries (replays are harmless: processors dedupe).

Order of checks: content type (415), the signature's headers when configured (401 missing, 403
malformed or stale: the body is never read), size while reading (413), the signature over the body
(403), JSON (400), number of elements (413), elements (422 / 200). Nothing is published before all of
them pass. Floods of rejected elements are bounded (ingest.elements, docs/ingest.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import make_asgi_app
from starlette.applications import Starlette
from starlette.datastructures import URL, Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.body_limits import BodyTooLarge, read_body
from adapters.publisher import Overloaded, Publisher, PublishFailed, Record, encode
from ingest import metrics
from ingest.elements import DEFAULT_MAX_ELEMENTS, NotJson, Rejections, load_batch, lone_surrogate, printable
from ingest.fastpath import received_stamp, sendgrid_record, twilio_record
from ingest.inbound import inbound_endpoint
from ingest.openapi import openapi_document
from ingest.paths import SENDGRID_EVENTS, SENDGRID_INBOUND, TWILIO_EVENTS
from ingest.responses import FastJSONResponse, error, signature_refused, unavailable
from schemas.event import CanonicalEvent
from schemas.inbound import INBOUND_MAX_BYTES
from schemas.privacy import RecipientPrivacy
from schemas.problems import InvalidEvent
from schemas.sendgrid import parse_sendgrid_event
from schemas.signatures import SendGridVerifier, SignatureError, TwilioVerifier
from schemas.twilio import parse_cloud_event

log = logging.getLogger(__name__)

Parser = Callable[[Any, datetime], CanonicalEvent]
FastParser = Callable[[Any, datetime], Record | None]


@dataclass(frozen=True)
class Verify:
    """One signature check in two steps: ``headers`` before the body is read (so an unsigned or stale
    request costs no body), ``body`` once it is; each raises SignatureError."""

    headers: Callable[[Scope], None]
    body: Callable[[Scope, bytes], None]


DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
# Elements validated between two yields to the event loop: a few ms at most even when every one takes
# the canonical path (docs/performance.md#hot-path-choices); a post of up to 256 events never yields.
CHUNK = 256
NOT_AN_OBJECT = [{"field": "(event)", "message": "must be a JSON object"}]  # shared: nothing changes it


@dataclass(frozen=True)
class IngestConfig:
    """What the endpoints enforce. A verifier left None means that endpoint takes unsigned requests."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # event batches
    max_elements: int = DEFAULT_MAX_ELEMENTS  # elements of one event batch
    inbound_max_bytes: int = INBOUND_MAX_BYTES
    sendgrid: SendGridVerifier | None = None  # signed Event Webhook
    sendgrid_inbound: SendGridVerifier | None = None  # Inbound Parse security policy
    twilio: TwilioVerifier | None = None
    privacy: RecipientPrivacy = field(default_factory=RecipientPrivacy)
    clock: Callable[[], float] = time.time


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), as Starlette's ``Headers.get`` gives it."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class BatchEndpoint:
    """POST to an event endpoint, as a plain ASGI app. ``IngestApp`` calls it first thing: the router,
    Starlette's middleware and Request objects cost more than the rest of a single-event request."""

    def __init__(
        self,
        name: str,
        parse: Parser,
        fast: FastParser,
        publisher: Publisher,
        config: IngestConfig,
        verify: Verify | None,
    ) -> None:
        self.name = name
        self.parse = parse
        # The fast path writes addresses as received: other privacy modes take the canonical path.
        self.fast = fast if config.privacy.mode == "plain" else None
        self.privacy = config.privacy
        self.publisher = publisher
        self.max_body_bytes = config.max_body_bytes
        self.max_elements = config.max_elements
        self.max_record_bytes = publisher.max_record_bytes
        self.verify = verify
        self.answers = metrics.Answers(name)
        self.publish_seconds = metrics.PUBLISH_SECONDS.labels(name)
        self.accepted = metrics.EVENTS.labels(name, "accepted")
        self.rejected = metrics.EVENTS.labels(name, "rejected")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.answer(scope, receive)
        self.answers.count(response.status_code)
        await response(scope, receive, send)

    async def answer(self, scope: Scope, receive: Receive) -> Response:
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return error(415, f"content type must be application/json, got {content_type[:80] or 'none'!r}")
        if self.verify is not None:
            try:
                self.verify.headers(scope)
            except SignatureError as exc:
                return signature_refused(exc)
        try:
            body = await read_body(receive, self.max_body_bytes, _header(scope, b"content-length"))
        except BodyTooLarge as exc:
            return error(413, str(exc))
        except ClientDisconnect:
            return error(400, "client disconnected before the body was complete")
        if self.verify is not None:
            try:
                self.verify.body(scope, body)
            except SignatureError as exc:
                return signature_refused(exc)
        try:
            payload, lenient = load_batch(body)
        except NotJson as exc:
            return error(400, f"body is not valid JSON: {exc}")
        if not isinstance(payload, list):
            return error(400, "body must be a JSON array of events")
        elements = len(payload)
        if elements > self.max_elements:  # refused before any element is looked at
            return error(
                413,
                f"the batch holds {elements} elements, more than the {self.max_elements} a post may hold",
                elements=elements,
                max_elements=self.max_elements,
            )
        rejections = Rejections(self.name, self.privacy)
        received_at = datetime.now(UTC)  # one for the post, however many chunks it takes
        if elements <= CHUNK:
            events = self.records(payload, 0, rejections, lenient, received_at)
        else:
            events = []
            for start in range(0, elements, CHUNK):
                # A long batch yields to the loop between chunks: other requests, /healthz and
                # Kafka's callbacks are not held for the whole validation.
                await asyncio.sleep(0)
                chunk = payload[start : start + CHUNK]
                events += self.records(chunk, start, rejections, lenient, received_at)
        del payload  # a flood's millions of elements are not held while Kafka acknowledges
        try:
            with self.publish_seconds.time():
                await self.publisher.publish_records(events, rejections.dead_letters(elements, len(events)))
        except Overloaded as exc:  # nothing was published; no log line per refused request
            return unavailable(f"ingest holds all it may for Kafka now; retry later ({exc})")
        except PublishFailed as exc:
            log.warning("publish failed on %s: %s", self.name, exc)
            return unavailable("events could not be made durable now; retry later")
        self.accepted.inc(len(events))
        if rejections.count:
            self.rejected.inc(rejections.count)
            if not events:
                return error(422, "no valid event in the batch", **rejections.answer())
        return FastJSONResponse({"accepted": len(events), **rejections.answer()})

    def records(
        self, payload: list[Any], start: int, rejections: Rejections, lenient: bool, received_at: datetime
    ) -> list[Record]:
        """Every element (``start`` is the first one's index in the post) as a record to publish, or
        added to ``rejections`` with its problems. ``lenient``: the elements may hold lone surrogates."""
        stamp = received_stamp(received_at)
        fast, parse, privacy = self.fast, self.parse, self.privacy
        events: list[Record] = []
        for index, raw in enumerate(payload, start):
            if lenient and (where := lone_surrogate(raw)) is not None:
                message = "cannot be re-encoded: text with a lone surrogate (no UTF-8 encoder writes it)"
                rejections.add(index, raw, [{"field": where, "message": message}])
                continue
            if type(raw) is not dict:  # what both parsers say first, without their cost (floods)
                rejections.add(index, raw, NOT_AN_OBJECT)
                continue
            # Most elements: the envelope straight from the JSON. The rest (and every invalid one,
            # with all its problems): the canonical models; both give the same bytes (fastpath.py).
            record = fast(raw, stamp) if fast is not None else None
            if record is None:
                try:
                    event = privacy.event(parse(raw, received_at))
                except InvalidEvent as exc:
                    problems = [{"field": printable(p.field), "message": p.message} for p in exc.problems]
                    rejections.add(index, raw, problems)
                    continue
                record = (event.message_id.encode(), encode(event))
            size = len(record[0]) + len(record[1])
            if size > self.max_record_bytes:
                # Valid, but Kafka would refuse it at every retry of the post, good neighbours and all.
                problem = f"the event takes {size} bytes, over the {self.max_record_bytes} of a Kafka record"
                rejections.add(index, raw, [{"field": "(event)", "message": problem}])
                continue
            events.append(record)
        return events


def _sendgrid_check(verifier: SendGridVerifier, clock: Callable[[], float]) -> Verify:
    def headers(scope: Scope) -> None:
        verifier.check_headers(Headers(scope=scope), clock())

    def body(scope: Scope, body: bytes) -> None:
        verifier.verify(Headers(scope=scope), body, clock())

    return Verify(headers, body)


def _twilio_check(verifier: TwilioVerifier) -> Verify:
    def headers(scope: Scope) -> None:
        verifier.check_headers(str(URL(scope=scope)), Headers(scope=scope))  # the URL Request.url gives

    def body(scope: Scope, body: bytes) -> None:
        verifier.verify(str(URL(scope=scope)), Headers(scope=scope), body)

    return Verify(headers, body)


class IngestApp(Starlette):
    """Starlette, except that a POST to an event endpoint goes straight to its ``BatchEndpoint``
    (the same one the router would reach, after more layers). Anything else takes the usual way."""

    def __init__(self, direct: dict[str, BatchEndpoint], routes: list[BaseRoute]) -> None:
        super().__init__(routes=routes)
        self.direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.direct.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _readyz(publisher: Publisher) -> Callable[[Request], Awaitable[Response]]:
    async def readyz(request: Request) -> Response:
        problems = await publisher.unready()
        if not problems:
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, "problems": problems}, status_code=503)

    return readyz


def _get_only(app: ASGIApp) -> ASGIApp:
    """Prometheus's app answers every method; here, as on every route, an undeclared one gets 405."""

    async def get_only(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
            refused = PlainTextResponse("Method Not Allowed", 405, headers={"Allow": "GET, HEAD"})
            await refused(scope, receive, send)
            return
        await app(scope, receive, send)

    return get_only


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(publisher: Publisher, config: IngestConfig | None = None) -> IngestApp:
    config = config or IngestConfig()
    sendgrid = _sendgrid_check(config.sendgrid, config.clock) if config.sendgrid else None
    twilio = _twilio_check(config.twilio) if config.twilio else None
    document = openapi_document(config.max_body_bytes, config.inbound_max_bytes, config.max_elements)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    direct = {
        SENDGRID_EVENTS: BatchEndpoint(
            "sendgrid", parse_sendgrid_event, sendgrid_record, publisher, config, sendgrid
        ),
        TWILIO_EVENTS: BatchEndpoint("twilio", parse_cloud_event, twilio_record, publisher, config, twilio),
    }
    return IngestApp(
        direct,
        routes=[
            *(Route(path, endpoint, methods=["POST"]) for path, endpoint in direct.items()),
            Route(
                SENDGRID_INBOUND,
                inbound_endpoint(
                    publisher,
                    config.inbound_max_bytes,
                    config.sendgrid_inbound,
                    config.privacy,
                    config.clock,
                ),
                methods=["POST"],
            ),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", _readyz(publisher), methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Mount("/metrics", app=_get_only(make_asgi_app())),
        ],
    )
