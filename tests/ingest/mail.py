"""Inbound Parse posts as SendGrid sends them (default mode), and multipart encoding for tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson

from schemas.sendgrid_inbound import InboundPost, UploadedFile

MESSAGE_ID = "CAN_P_JMvV7ZpAQhOnDienypLrJmuhN=LQWweu4yScw4jQyXY2w@mail.gmail.com"
HEADERS = (
    "Received: by mx0047p1mdw1.sendgrid.net with SMTP id 6WCVv7KAWn Mon, 23 Nov 2026 10:00:06 +0000 (UTC)\n"
    "Received: from mail-io0-f169.google.com (mail-io0-f169.google.com [209.85.223.169]) by\n"
    " mx0047p1mdw1.sendgrid.net (Postfix) with ESMTPS id AA9FFA817F2 for <support@parse.example>;\n"
    " Mon, 23 Nov 2026 10:00:05 +0000 (UTC)\n"
    "MIME-Version: 1.0\n"
    "From: Ana Silva <Ana.Silva@Gmail.com>\n"
    "Date: Mon, 23 Nov 2026 04:00:01 -0600\n"
    f"Message-ID: <{MESSAGE_ID}>\n"
    "Subject: Invoice and photos\n"
    "To: Support <support@parse.example>, bo@shop.example\n"
    "Cc: carol@other.example\n"
    "Content-Type: multipart/mixed; boundary=001a113df448cad2d00538a4ac55\n"
)

# (form part, filename, content type, size, content id or None)
ALLOWED = ("attachment1", "invoice.PDF", "application/pdf", 3000, None)
DISALLOWED = ("attachment2", "setup.exe", "application/x-msdownload", 1200, None)
INLINE = ("attachment3", "logo.png", "image/png", 800, "ii_139db99fdb3c4dc7")
ATTACHMENTS = (ALLOWED, DISALLOWED, INLINE)

File = tuple[str, str, str, bytes]  # part, filename, content type, bytes


def inbound_fields(
    headers: str = HEADERS, attachments: Iterable[tuple[str, str, str, int, str | None]] = ATTACHMENTS
) -> dict[str, str]:
    attachments = list(attachments)
    info = {
        part: {"filename": name, "name": name, "type": ctype, **({"content-id": cid} if cid else {})}
        for part, name, ctype, _, cid in attachments
    }
    return {
        "headers": headers,
        "dkim": "{@gmail.com : pass}",
        "content-ids": orjson.dumps({cid: part for part, *_, cid in attachments if cid}).decode(),
        "to": "Support <support@parse.example>, bo@shop.example",
        "cc": "carol@other.example",
        "from": "Ana Silva <Ana.Silva@Gmail.com>",
        "text": "Hello,\nplease find the invoice attached.\n",
        "html": '<p>Hello,</p><p>please find the invoice attached.</p><img src="cid:ii_139db99fdb3c4dc7">',
        "sender_ip": "209.85.223.169",
        "spam_report": "Spam detection software has NOT identified this incoming email as spam.",
        "envelope": orjson.dumps({"to": ["support@parse.example"], "from": "ana.silva@gmail.com"}).decode(),
        "attachments": str(len(attachments)),
        "subject": "Invoice and photos",
        "spam_score": "0.011",
        "attachment-info": orjson.dumps(info).decode(),
        "charsets": orjson.dumps(
            {"to": "UTF-8", "html": "UTF-8", "subject": "UTF-8", "text": "UTF-8"}
        ).decode(),
        "SPF": "pass",
    }


def attachment_files(
    attachments: Iterable[tuple[str, str, str, int, str | None]] = ATTACHMENTS,
) -> list[File]:
    return [
        (part, name, ctype, bytes([65 + i % 26]) * size)
        for i, (part, name, ctype, size, _) in enumerate(attachments)
    ]


def multipart(
    fields: dict[str, str], files: Iterable[File] = (), boundary: str | None = None
) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data post."""
    boundary = boundary or f"xYzZY{uuid.uuid4().hex}"
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for part, filename, ctype, content in files:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{part}"; filename="{filename}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n"
        ).encode()
        out += content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


RECEIVED = datetime(2026, 11, 23, 10, 0, 9, 250_000, tzinfo=UTC)


def post(fields: dict[str, str] | None = None, with_files: bool = True) -> InboundPost:
    files = [UploadedFile(part, name, ctype, size) for part, name, ctype, size, _ in ATTACHMENTS]
    return InboundPost(inbound_fields() if fields is None else fields, files if with_files else [])
