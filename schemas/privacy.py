"""Recipient privacy, applied by ingest before anything is published. Pure.

Modes (setting ``recipient_privacy``):

- ``plain``: addresses as received.
- ``hashed``: an address becomes HMAC-SHA256(key, lower-cased address) in hex. Keyed, so nobody without
  the key can find an address by hashing a list of candidates; the same address always gives the same
  value, so per-recipient counts still work.
- ``domain``: an address becomes ``@domain``. SendGrid message ids (``<X-Message-Id>:<recipient>``)
  still carry the keyed hash, because two recipients of one send on the same domain are two messages.

``recipient_domain`` (and ``sender_domain``) stay as they are, so domain analytics work in every mode.
Applied to ``recipient``, to the recipient part of SendGrid message ids, to the recipients and the
sender of received mail (there the sender is the outside person), and to addresses found inside
``reason`` (bounce texts quote them), ``url``, custom args, the subject of received mail and dead
letters.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.event import CanonicalEvent, derived_event_id, domain_of

PrivacyMode = Literal["plain", "hashed", "domain"]
# An address in free text, also URL-encoded (ana%40example.com) as click URLs carry them. The local part
# is limited to the usual characters, so that URL syntax around an address (/, =, ?, &) stays outside.
_ADDRESS_IN_TEXT = re.compile(r"[A-Za-z0-9._+-]{1,64}(?:@|%40)[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+")


@dataclass(frozen=True, slots=True)
class RecipientPrivacy:
    mode: PrivacyMode = "plain"
    key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mode != "plain" and not self.key:
            raise ValueError(f"recipient privacy {self.mode!r} needs a recipient hash key")

    def _hash(self, address: str) -> str:
        assert self.key is not None
        return hmac.new(self.key, address.strip().lower().encode(), hashlib.sha256).hexdigest()

    def address(self, address: str) -> str:
        """How ``address`` is stored."""
        if self.mode == "plain":
            return address
        if self.mode == "hashed":
            return self._hash(address)
        return f"@{domain_of(address) or ''}"

    def identity(self, address: str) -> str:
        """How ``address`` appears inside a message id: distinct per address in every mode."""
        return address if self.mode == "plain" else self._hash(address)

    def text(self, value: str) -> str:
        """``value`` with every address in it replaced."""
        if self.mode == "plain":
            return value
        return _ADDRESS_IN_TEXT.sub(lambda m: self.address(m.group(0).replace("%40", "@")), value)

    def scrub(self, value: Any) -> Any:
        """Every string inside a JSON-like value (a dead letter's payload) through ``text``."""
        if self.mode == "plain":
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        if isinstance(value, dict):
            return {self.scrub(k) if isinstance(k, str) else k: self.scrub(v) for k, v in value.items()}
        return value

    def event(self, event: CanonicalEvent) -> CanonicalEvent:
        """``event`` as it may be stored. Idempotent only in mode plain: apply it once, at ingest."""
        if self.mode == "plain":
            return event
        e = event
        update: dict[str, Any] = {}
        if e.recipient:
            update["recipient"] = self.address(e.recipient)
            update["recipient_domain"] = e.recipient_domain or domain_of(e.recipient)
            suffix = f":{e.recipient}"
            if e.message_id.endswith(suffix):  # SendGrid: <X-Message-Id>:<recipient>
                message_id = e.message_id[: -len(suffix)] + ":" + self.identity(e.recipient)
                update["message_id"] = message_id
                if e.event_id == derived_event_id(e.provider, e.message_id, e.raw_type, e.occurred_at):
                    update["event_id"] = derived_event_id(e.provider, message_id, e.raw_type, e.occurred_at)
        if e.reason:
            update["reason"] = self.text(e.reason)
        if e.url:
            update["url"] = self.text(e.url)
        if e.custom_args:
            update["custom_args"] = {k: self.text(v) for k, v in e.custom_args.items()}
        if e.inbound is not None:
            inbound = e.inbound
            update["inbound"] = inbound.model_copy(
                update={
                    "recipients": tuple(dict.fromkeys(self.address(r) for r in inbound.recipients)),
                    "subject": self.text(inbound.subject) if inbound.subject else None,
                }
            )
            if e.sender:
                update["sender"] = self.address(e.sender)
                update["sender_domain"] = e.sender_domain or domain_of(e.sender)
        return e.model_copy(update=update)
