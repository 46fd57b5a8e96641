"""Kafka record value -> canonical event, or the reason it cannot be one. Pure."""

from __future__ import annotations

from pydantic import ValidationError

from schemas.event import CanonicalEvent, Envelope


class Undecodable(ValueError):
    pass


def decode(value: bytes | None) -> CanonicalEvent:
    if value is None:
        raise Undecodable("record has no value")
    try:
        return Envelope.model_validate_json(value).event
    except ValidationError as exc:
        raise Undecodable(f"not a v1 envelope: {exc.error_count()} problems: {exc.errors()[:5]}") from None
