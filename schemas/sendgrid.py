"""SendGrid Event Webhook event (one element of the posted array) -> canonical event.

Message identity: SendGrid's ``sg_message_id`` is ``<X-Message-Id>.filter…`` per recipient, and
asynchronous bounces arrive without it (docs/providers.md). Their ``smtp-id`` is ``<X-Message-Id@host>``.
So mailpulse names a SendGrid message ``<X-Message-Id>:<recipient>``, which every event of that
message carries one way or the other; ``sg_message_id`` is kept as ``provider_message_id``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.event import (
    MAX_TAGS,
    CanonicalEvent,
    Provider,
    Source,
    derived_event_id,
    domain_of,
)
from schemas.mapping import classify
from schemas.problems import InvalidEvent, Problem, problems_from
from schemas.tags import is_tag

# Known top-level fields; any other string-valued key is a custom arg (unique_args / custom_args).
KNOWN_FIELDS = frozenset(
    {
        "email", "timestamp", "event", "smtp-id", "sg_event_id", "sg_message_id", "category", "reason",
        "status", "response", "attempt", "ip", "tls", "pool", "type", "bounce_classification",
        "useragent", "url", "url_offset", "asm_group_id", "sg_machine_open", "cert_err",
        "marketing_campaign_id", "marketing_campaign_name", "marketing_campaign_version",
        "marketing_campaign_split_id", "singlesend_id", "singlesend_name", "sg_template_id",
        "sg_template_name", "sg_content_type", "template_id", "template_version_id", "mc_stats",
        "phase_id", "send_at", "post_type", "unique_args", "custom_args", "newsletter", "mc_auto_id",
        "mc_auto_name", "mc_auto_step_id", "mc_pod_id", "template_hash", "sg_user_id", "event_id",
    }
)  # fmt: skip
# Unix seconds before 2000 or past 2100 are not real event times.
MIN_TIMESTAMP, MAX_TIMESTAMP = 946_684_800, 4_102_444_800


class SendGridEvent(BaseModel):
    """The fields mailpulse reads; everything else is tolerated."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    event: str = Field(min_length=1, max_length=128)
    email: str = Field(min_length=3, max_length=512)
    timestamp: int = Field(ge=MIN_TIMESTAMP, le=MAX_TIMESTAMP)
    sg_event_id: str | None = None
    sg_message_id: str | None = None
    smtp_id: str | None = Field(default=None, alias="smtp-id")
    category: str | list[str] | None = None
    reason: str | None = None
    status: str | None = None
    response: str | None = None
    attempt: int | None = None
    type: str | None = None
    bounce_classification: str | None = None
    sg_machine_open: bool | None = None
    url: str | None = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _whole_seconds(cls, value: Any) -> Any:
        # 1700000000.0 is an integer to JSON Schema (and so to the OpenAPI description): taken as one.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be whole Unix seconds (an integer)")
        return value


# sg_message_id is "<X-Message-Id>.filter…" (older) or "<X-Message-Id>.recvd-…" (current).
_SG_MESSAGE_ID = re.compile(r"^(.+?)\.(?:filter|recvd)")


def x_message_id(sg_message_id: str | None, smtp_id: str | None) -> str | None:
    """The X-Message-Id both ids start with, or None when neither is usable.

    A sender-set Message-ID header replaces the SendGrid-made smtp-id; an asynchronous bounce of such
    a message (no sg_message_id) cannot be joined to its other events and gets a message of its own.
    """
    if isinstance(sg_message_id, str) and sg_message_id.strip():
        match = _SG_MESSAGE_ID.match(sg_message_id.strip())
        return match.group(1) if match else sg_message_id.strip()
    if isinstance(smtp_id, str):
        local = smtp_id.strip().strip("<>").split("@", 1)[0]
        return local or None
    return None


def split_custom_args(raw: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Custom args (unknown top-level scalars) -> (tags, the rest). Pairs that satisfy the Email API tag
    rules become tags (at most 10, by key order); the others are kept as-is, never rejected."""
    tags: dict[str, str] = {}
    rest: dict[str, str] = {}
    # Most events carry a handful of custom args among a dozen known fields: set difference first.
    for key in sorted(raw.keys() - KNOWN_FIELDS):
        value = raw[key]
        if isinstance(value, str):
            text = value
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = str(value)
        else:
            continue
        if len(tags) < MAX_TAGS and is_tag(key, text):
            tags[key] = text
        else:
            rest[key] = text
    return tags, rest


def parse_sendgrid_event(raw: Any, received_at: datetime) -> CanonicalEvent:
    """Validate and map one SendGrid event. Raises InvalidEvent listing every problem."""
    if not isinstance(raw, dict):
        raise InvalidEvent([Problem("(event)", "must be a JSON object")])
    problems: list[Problem] = []
    sg: SendGridEvent | None = None
    try:
        sg = SendGridEvent.model_validate(raw)
    except ValidationError as exc:
        problems += problems_from(exc)
    xid = x_message_id(raw.get("sg_message_id"), raw.get("smtp-id"))
    if xid is None:
        problems.append(Problem("sg_message_id", "neither sg_message_id nor smtp-id identifies the message"))
    if problems:
        raise InvalidEvent(problems)
    assert sg is not None and xid is not None
    tags, custom_args = split_custom_args(raw)
    recipient = sg.email.strip().lower()
    message_id = f"{xid}:{recipient}"
    occurred_at = datetime.fromtimestamp(sg.timestamp, UTC)
    raw_type = "blocked" if sg.event == "bounce" and sg.type == "blocked" else sg.event
    kind, status = classify(Provider.SENDGRID, raw_type)
    categories = (sg.category,) if isinstance(sg.category, str) else tuple(sg.category or ())
    try:
        return CanonicalEvent(
            event_id=sg.sg_event_id or derived_event_id(Provider.SENDGRID, message_id, raw_type, occurred_at),
            message_id=message_id,
            provider_message_id=sg.sg_message_id or None,
            kind=kind,
            status=status,
            raw_type=raw_type,
            occurred_at=occurred_at,
            received_at=received_at,
            source=Source.WEBHOOK,
            provider=Provider.SENDGRID,
            recipient=recipient,
            recipient_domain=domain_of(recipient),
            tags=tags,
            custom_args=custom_args,
            categories=categories,
            reason=sg.reason or sg.response,
            smtp_status=sg.status,
            bounce_type=sg.type if sg.event == "bounce" else None,
            bounce_classification=sg.bounce_classification,
            attempt=sg.attempt,
            machine_open=sg.sg_machine_open,
            url=sg.url,
        )
    except ValidationError as exc:
        raise InvalidEvent(problems_from(exc)) from None
