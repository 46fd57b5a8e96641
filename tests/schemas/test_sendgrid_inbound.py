"""Inbound Parse posts -> INBOUND canonical events (pure), and their email_events columns (chDB)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.event import Provider, Source
from schemas.inbound import Attachment
from schemas.problems import InvalidEvent
from schemas.sendgrid_inbound import InboundPost, UploadedFile, parse_inbound
from schemas.status import EmailStatus, EventKind
from tests.ingest.mail import HEADERS, MESSAGE_ID, RECEIVED, inbound_fields, post


def test_default_mode_post_becomes_one_inbound_event() -> None:
    event = parse_inbound(post(), RECEIVED)
    assert (event.kind, event.status, event.source, event.provider) == (
        EventKind.STATUS,
        EmailStatus.INBOUND,
        Source.INBOUND,
        Provider.SENDGRID,
    )
    assert event.message_id == f"inbound:{MESSAGE_ID}"
    # The time SendGrid's MX stamped on the topmost Received header, not the sender's Date.
    assert event.occurred_at == datetime(2026, 11, 23, 10, 0, 6, tzinfo=UTC)
    assert event.received_at == RECEIVED
    assert (event.sender, event.sender_domain) == ("ana.silva@gmail.com", "gmail.com")
    assert (event.recipient, event.recipient_domain) == ("support@parse.example", "parse.example")
    inbound = event.inbound
    assert inbound is not None
    assert inbound.recipients == ("support@parse.example", "bo@shop.example", "carol@other.example")
    assert (inbound.subject, inbound.spam_score, inbound.spf) == ("Invoice and photos", 0.011, "pass")
    assert inbound.dkim == "{@gmail.com : pass}"


def test_allowed_disallowed_and_inline_attachments() -> None:
    inbound = parse_inbound(post(), RECEIVED).inbound
    assert inbound is not None
    pdf, exe, logo = inbound.attachments
    assert pdf == Attachment(
        part="attachment1", filename="invoice.PDF", content_type="application/pdf", size=3000
    )
    assert (exe.filename, exe.size, exe.rejected, exe.content_id) == ("setup.exe", 1200, True, None)
    assert exe.reason is not None and "'.exe' is not supported" in exe.reason and ".heic" in exe.reason
    assert (logo.content_id, logo.rejected, logo.size) == ("ii_139db99fdb3c4dc7", False, 800)


def test_attachment_metadata_without_info_and_content_ids_from_their_own_field() -> None:
    fields = inbound_fields()
    del fields["attachment-info"]
    event = parse_inbound(post(fields), RECEIVED)
    assert event.inbound is not None
    by_part = {a.part: a for a in event.inbound.attachments}
    assert by_part["attachment3"].content_id == "ii_139db99fdb3c4dc7"  # from content-ids
    assert by_part["attachment2"].content_type == "application/x-msdownload"  # from the part itself
    unnamed = parse_inbound(InboundPost(fields, [UploadedFile("attachment1", None, None, 5)]), RECEIVED)
    assert unnamed.inbound is not None
    [only] = unnamed.inbound.attachments
    assert only.rejected and only.reason is not None
    assert only.reason.startswith("no file name extension and no content type")


def test_retries_of_one_mail_are_one_event() -> None:
    first = parse_inbound(post(), RECEIVED)
    retry = parse_inbound(post(), datetime(2026, 11, 25, 8, 0, tzinfo=UTC))  # 46 h later
    assert (retry.message_id, retry.event_id, retry.dedupe_key) == (
        first.message_id,
        first.event_id,
        first.dedupe_key,
    )


def test_without_message_id_a_content_hash_names_the_mail() -> None:
    fields = inbound_fields(headers=HEADERS.replace(f"Message-ID: <{MESSAGE_ID}>\n", ""))
    one = parse_inbound(post(fields), RECEIVED)
    again = parse_inbound(post(dict(fields)), datetime(2026, 11, 24, tzinfo=UTC))
    assert one.message_id.startswith("inbound:sha256:") and one.message_id == again.message_id
    assert one.dedupe_key == again.dedupe_key
    other = parse_inbound(post({**fields, "text": "another mail"}), RECEIVED)
    assert other.message_id != one.message_id


def test_time_falls_back_to_date_then_to_ingest_time() -> None:
    no_received = "\n".join(line for line in HEADERS.split("\n") if not line.startswith(("Received", " ")))
    dated = parse_inbound(post(inbound_fields(headers=no_received)), RECEIVED)
    assert dated.occurred_at == datetime(2026, 11, 23, 10, 0, 1, tzinfo=UTC)  # Date: 04:00:01 -0600
    undated = "\n".join(line for line in no_received.split("\n") if not line.startswith("Date"))
    assert parse_inbound(post(inbound_fields(headers=undated)), RECEIVED).occurred_at == RECEIVED
    absurd = no_received.replace("Mon, 23 Nov 2026 04:00:01 -0600", "Thu, 1 Jan 1970 00:00:00 +0000")
    assert parse_inbound(post(inbound_fields(headers=absurd)), RECEIVED).occurred_at == RECEIVED


def test_raw_mode_reads_headers_and_attachments_from_the_mime_message() -> None:
    boundary = "001a113df448cad2d00538a4ac55"
    raw = (
        HEADERS.replace("Subject: Invoice and photos", "Subject: =?UTF-8?B?RmFjdHVyYSDDqSBmb3Rvcw==?=")
        + "\n"
        + f"--{boundary}\nContent-Type: text/plain; charset=UTF-8\n\nHello\n"
        + f'--{boundary}\nContent-Type: application/pdf; name="a.pdf"\nContent-Disposition: attachment; '
        + 'filename="a.pdf"\nContent-Transfer-Encoding: base64\n\nSGVsbG8gUERG\n'
        + f"--{boundary}\nContent-Type: image/png\nContent-Disposition: inline\nContent-ID: <logo@x>\n"
        + "Content-Transfer-Encoding: base64\n\niVBORw==\n"
        + f"--{boundary}--\n"
    )
    event = parse_inbound(InboundPost({"email": raw, "SPF": "softfail"}), RECEIVED)
    assert event.message_id == f"inbound:{MESSAGE_ID}"
    assert event.sender == "ana.silva@gmail.com"
    inbound = event.inbound
    assert inbound is not None
    assert inbound.subject == "Factura é fotos" and inbound.spf == "softfail"
    assert inbound.recipients == ("support@parse.example", "bo@shop.example", "carol@other.example")
    pdf, logo = inbound.attachments
    assert (pdf.filename, pdf.size, pdf.rejected) == ("a.pdf", 9, False)
    # No file name: its content type (image/png) decides.
    assert (logo.filename, logo.content_id, logo.rejected) == (None, "logo@x", False)


def test_bad_optional_fields_are_ignored_not_refused() -> None:
    fields = {
        **inbound_fields(),
        "spam_score": "high",
        "envelope": "{not json",
        "attachment-info": "[1, 2]",
        "content-ids": "null",
    }
    event = parse_inbound(post(fields), RECEIVED)
    assert event.inbound is not None and event.inbound.spam_score is None
    assert event.recipient == "support@parse.example"  # from To, the envelope being unreadable
    for score in ("nan", "inf", "-1e999"):
        inbound = parse_inbound(post({**fields, "spam_score": score}), RECEIVED).inbound
        assert inbound is not None and inbound.spam_score is None


def test_a_form_that_is_no_inbound_post_is_invalid() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_inbound(InboundPost({"text": "hi", "subject": "x"}), RECEIVED)
    [problem] = caught.value.problems
    assert problem.field == "headers" and "not an Inbound Parse post" in problem.message


# --------------------------------------------------------------------------- rows
