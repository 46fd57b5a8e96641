"""``POST /webhooks/sendgrid/inbound``: SendGrid Inbound Parse (multipart/form-data) -> one INBOUND event.

SendGrid drops a mail at once on any 3xx/4xx and retries 5xx for 72 hours (docs/providers.md). So this
endpoint
refuses (4xx) only what must never be stored: a body over the limit (413), not multipart (415), a form
that cannot be parsed (400), a post that is no Inbound Parse post at all (422), and a missing or bad
signature when a key is configured (401/403). When Kafka does not acknowledge it answers 503 with
Retry-After, so SendGrid retries and the mail is not lost.

The body is parsed as it streams in (starlette's multipart parser) through a receive channel that stops
at the limit; attachment parts spool to temporary files, are measured and dropped: no bytes are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive

from adapters.body_limits import BodyTooLarge, check_declared_length, limited_receive
from adapters.publisher import Publisher, PublishFailed
from ingest import metrics
from ingest.responses import error, signature_refused, unavailable
from schemas.privacy import RecipientPrivacy
from schemas.problems import InvalidEvent
from schemas.sendgrid_inbound import InboundPost, UploadedFile, parse_inbound
from schemas.signatures import SendGridVerifier, SignatureError

log = logging.getLogger(__name__)

NAME = "inbound"
# A mail has a few dozen fields; attachments are bounded by the size limit and this count.
MAX_FIELDS = 200
MAX_FILES = 500


class _CompleteParser(MultiPartParser):
    """starlette's streaming multipart parser, which also notes whether the closing boundary came: a
    body cut short would otherwise parse as a shorter, valid form."""

    complete = False

    def on_end(self) -> None:
        self.complete = True


async def _read_form(request: Request, receive: Receive, limit: int) -> InboundPost:
    parser = _CompleteParser(
        request.headers,
        Request(request.scope, receive).stream(),
        max_files=MAX_FILES,
        max_fields=MAX_FIELDS,
        max_part_size=limit,
    )
    form = await parser.parse()
    try:
        if not parser.complete:
            raise MultiPartException("the closing boundary is missing (body cut short)")
        return _post(form)
    finally:
        await form.close()


def _post(form: FormData) -> InboundPost:
    fields: dict[str, str] = {}
    files: list[UploadedFile] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            files.append(UploadedFile(name, value.filename, value.content_type, value.size or 0))
        else:
            fields.setdefault(name, value)
    return InboundPost(fields, files)


def inbound_endpoint(
    publisher: Publisher,
    limit: int,
    verifier: SendGridVerifier | None,
    privacy: RecipientPrivacy,
    clock: Callable[[], float],
) -> Callable[[Request], Awaitable[Response]]:
    @metrics.counted(NAME)
    async def endpoint(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "multipart/form-data":
            return error(
                415, f"content type must be multipart/form-data, got {content_type[:80] or 'none'!r}"
            )
        try:
            check_declared_length(request.headers, limit)
            hasher = None
            if verifier is not None:  # refuse unsigned or stale posts before reading them
                verifier.check_headers(request.headers, clock())
                hasher = verifier.hasher(request.headers)
            receive = limited_receive(request.receive, limit, hasher.update if hasher else None)
            post = await _read_form(request, receive, limit)
            if verifier is not None and hasher is not None:
                verifier.verify_digest(request.headers, hasher.digest(), clock())
        except BodyTooLarge as exc:
            return error(413, f"{exc}, the largest inbound mail accepted")
        except SignatureError as exc:
            return signature_refused(exc)
        except MultiPartException as exc:
            return error(400, f"unparseable multipart form: {exc.message}")
        except ClientDisconnect:
            return error(400, "client disconnected before the body was complete")
        try:
            event = privacy.event(parse_inbound(post, datetime.now(UTC)))
        except InvalidEvent as exc:
            errors = [{"field": p.field, "message": p.message} for p in exc.problems]
            return error(422, "not an Inbound Parse mail", errors=errors)
        try:
            with metrics.PUBLISH_SECONDS.labels(NAME).time():
                await publisher.publish([event], [])
        except PublishFailed as exc:
            log.warning("publish failed on %s: %s", NAME, exc)
            return unavailable("the mail could not be stored now; retry later")
        metrics.EVENTS.labels(NAME, "accepted").inc()
        attachments = event.inbound.attachments if event.inbound else ()
        return JSONResponse(
            {
                "accepted": 1,
                "message_id": event.message_id,
                "attachments": len(attachments),
                "rejected_attachments": sum(a.rejected for a in attachments),
            }
        )

    return endpoint
