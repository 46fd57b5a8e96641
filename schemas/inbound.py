"""What mailpulse keeps of a received (inbound) mail: envelope facts and attachment metadata, never
the content or the attachment bytes. Pure pydantic; carried by ``CanonicalEvent.inbound``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Flex's inbound limit (docs/providers.md): the whole mail, attachments included.
INBOUND_MAX_BYTES = 20 * 1024 * 1024
# Attachment types Flex supports (docs/providers.md); any other is recorded as a rejected attachment.
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".pdf", ".jpg", ".jpeg", ".png", ".gif", ".mp3", ".mp4", ".txt", ".heic", ".amr",
)  # fmt: skip
# Bounds that keep one inbound event far below Kafka's default 1 MB message size.
MAX_RECIPIENTS = 500
MAX_ATTACHMENTS = 500
MAX_TEXT = 4096


class Attachment(BaseModel):
    """One attachment of a received mail. ``content_id`` set = an inline attachment (cid: reference)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    part: str = Field(description="form part or MIME position it came from, e.g. attachment1")
    filename: str | None = None
    content_type: str | None = None
    size: int | None = Field(default=None, ge=0, description="bytes; None when the part was not sent")
    content_id: str | None = None
    rejected: bool = False
    reason: str | None = None


# Content types of the supported extensions: the type of an attachment without a file name extension.
_EXTENSION_OF_TYPE = {
    "application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif",
    "audio/mpeg": ".mp3", "video/mp4": ".mp4", "text/plain": ".txt", "image/heic": ".heic",
    "audio/amr": ".amr",
}  # fmt: skip
_SUPPORTED = ", ".join(SUPPORTED_EXTENSIONS)


def attachment_problem(filename: str | None, content_type: str | None = None) -> str | None:
    """Why an attachment is not of a supported type, or None when it is. The file name's extension
    decides; without one, the content type does (inline images often come without a name)."""
    name = (filename or "").strip()
    if "." in name.strip("."):
        extension = "." + name.rsplit(".", 1)[1].lower()
        if extension in SUPPORTED_EXTENSIONS:
            return None
        return f"type {extension[:20]!r} is not supported (supported: {_SUPPORTED})"
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in _EXTENSION_OF_TYPE:
        return None
    known = f"content type {ctype[:60]!r}" if ctype else "no content type"
    return f"no file name extension and {known}, so the type is not a supported one ({_SUPPORTED})"


class InboundDetails(BaseModel):
    """A received mail's facts. ``recipients``: To, Cc and envelope recipients, lower-cased, in order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recipients: tuple[str, ...] = ()
    subject: str | None = None
    spam_score: float | None = Field(default=None, allow_inf_nan=False)
    spf: str | None = None
    dkim: str | None = None
    attachments: tuple[Attachment, ...] = ()
