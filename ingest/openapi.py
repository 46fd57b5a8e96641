"""The OpenAPI 3.1 description of ingest, served at ``GET /openapi.json``. Written by hand, kept next
to the endpoints; tests check that every answer the app gives is described here."""

from __future__ import annotations

from typing import Any

from ingest.elements import DEFAULT_MAX_ELEMENTS, MAX_ERRORS, PER_ELEMENT_LETTERS
from ingest.paths import SENDGRID_EVENTS, SENDGRID_INBOUND, TWILIO_EVENTS
from schemas.event import MAX_TAG_KEY, MAX_TAG_VALUE, MAX_TAGS, UINT32_MAX
from schemas.sendgrid import MAX_TIMESTAMP, MIN_TIMESTAMP
from schemas.sendgrid_inbound import IDENTIFYING_FIELDS
from schemas.signatures import (
    BODY_SHA256_PARAM,
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
)
from schemas.twilio import OPERATION_TYPE_PREFIX

JSON = "application/json"
Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: str = "Error", **extra: Any) -> Schema:
    return {"description": description, "content": {JSON: {"schema": _ref(schema)}}, **extra}


def _refusals(limit: int, content_type: str) -> dict[str, Schema]:
    return {
        "400": _answer("Malformed body (not JSON / not an array, or an unparseable form)."),
        "401": _answer("Signature required (a key is configured) but missing."),
        "403": _answer("Signature does not match, or its timestamp is outside the tolerance."),
        "413": _answer(f"Body larger than {limit} bytes; reading stopped at the limit."),
        "415": _answer(f"Content type is not {content_type}."),
        "503": {
            "description": "Kafka did not acknowledge in time, or ingest already holds all the bytes it "
            "may for Kafka: nothing was acknowledged, retry later. " + _BUSY,
            "content": {JSON: {"schema": _ref("Error")}, "text/plain": {}},
            "headers": {
                "Retry-After": {"description": "seconds (JSON answers)", "schema": {"type": "integer"}}
            },
        },
    }


# uvicorn's own answer past MAILPULSE_INGEST_MAX_CONNECTIONS, on any route.
_BUSY = "Past the server's connection limit: text/plain, before the request is read."


def _get(summary: str, answers: dict[str, Schema]) -> Schema:
    """A GET route, with the connection limit's 503 unless it describes its own."""
    busy = {"description": _BUSY, "content": {"text/plain": {}}}
    return {"get": {"summary": summary, "responses": {**answers, "503": answers.get("503", busy)}}}


def _json(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _header(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


def _batch(summary: str, item: str, limit: int, max_elements: int, signing: list[Schema]) -> Schema:
    refusals = _refusals(limit, JSON)
    refusals["413"] = _answer(
        f"Body larger than {limit} bytes (reading stopped at the limit), or more than {max_elements} "
        "elements in the batch (then `elements` and `max_elements` give both): no element was "
        "validated or published."
    )
    return {
        "post": {
            "summary": summary,
            "description": "Each element is validated on its own: valid ones are published, invalid ones "
            "go to the dead-letter topic, and the answer lists the problems by index and field (the first "
            f"{MAX_ERRORS}; `errors_total` counts them all when more). More than {PER_ELEMENT_LETTERS} "
            "rejected elements in a post make one dead letter for the post (counts and the first "
            "elements), not one each.",
            "parameters": signing,
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {"schema": {"type": "array", "items": _ref(item), "maxItems": max_elements}}
                },
            },
            "responses": {
                "200": _answer("Every valid event is acknowledged by Kafka.", "BatchResult"),
                "422": _answer("No element of the batch is valid.", "BatchRejected"),
                **refusals,
            },
        }
    }


_INBOUND_FIELDS = (
    "headers", "email", "dkim", "content-ids", "to", "from", "cc", "subject", "text", "html", "sender_ip",
    "spam_report", "spam_score", "envelope", "attachments", "attachment-info", "charsets", "SPF",
)  # fmt: skip
_SIGNED = "Required when the matching key is configured."
# "\s" is meant as Python's re reads it (str.isspace, what the parsers' strip() removes); ECMA-262's
# differs on a few control characters. Not blank: strip() leaves something.
_NOT_BLANK = r"\S"
# schemas.sendgrid.x_message_id: once blanks and the <> around it go, something is left before any "@".
_SMTP_ID = r"^\s*[<>]*[^<>@\s]|^\s*[<>]+\s+\S"
_TAG_CHARS = "^[A-Za-z0-9._~-]+$"
_OPERATION_TYPE = "^" + OPERATION_TYPE_PREFIX.replace(".", "\\.")
# UTC datetimes are stored between 1970 and 2200: these years stay inside whatever the offset.
_DATE_TIME: Schema = {
    "type": "string",
    "format": "date-time",
    "pattern": "^(197[1-9]|19[89][0-9]|2[01][0-9]{2})-",
}
_OPERATION_ID: Schema = {"type": "string", "maxLength": 512}
_SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "minLength": 1, "description": "what is wrong"}},
    },
    "Problem": {
        "type": "object",
        "required": ["field", "message"],
        "properties": {
            "index": {"type": "integer", "description": "position of the element in the batch"},
            "field": {"type": "string"},
            "message": {"type": "string"},
        },
    },
    "BatchResult": {
        "type": "object",
        "required": ["accepted", "rejected", "errors"],
        "properties": {
            "accepted": {"type": "integer"},
            "rejected": {"type": "integer", "description": "every rejected element"},
            "errors": {"type": "array", "items": _ref("Problem"), "maxItems": MAX_ERRORS},
            "errors_total": {"type": "integer", "description": "all problems, when `errors` was cut"},
        },
    },
    "BatchRejected": {
        "type": "object",
        "required": ["error", "rejected", "errors"],
        "properties": {
            "error": {"type": "string", "minLength": 1},
            "rejected": {"type": "integer", "description": "every rejected element"},
            "errors": {"type": "array", "items": _ref("Problem"), "maxItems": MAX_ERRORS},
            "errors_total": {"type": "integer", "description": "all problems, when `errors` was cut"},
        },
    },
    "InboundRejected": {
        "type": "object",
        "required": ["error", "errors"],
        "properties": {
            "error": {"type": "string", "minLength": 1},
            "errors": {"type": "array", "items": _ref("Problem")},
        },
    },
    "InboundAccepted": {
        "type": "object",
        "required": ["accepted", "message_id", "attachments", "rejected_attachments"],
        "properties": {
            "accepted": {"const": 1},
            "message_id": {"type": "string"},
            "attachments": {"type": "integer"},
            "rejected_attachments": {"type": "integer", "description": "attachments of unsupported types"},
        },
    },
    "SendGridEvent": {
        "type": "object",
        "required": ["email", "timestamp", "event"],
        "description": "One SendGrid Event Webhook event. sg_message_id (not blank) or smtp-id (an "
        "X-Message-Id before its `@`) must identify the message; mailpulse names it X-Message-Id:email, "
        "at most 512 characters: the lengths below keep within it (ingest takes emails up to 512 "
        "characters while the name fits). Other keys are kept: string-valued ones as custom args, or "
        "tags when they follow the tag rules.",
        "properties": {
            "email": {"type": "string", "minLength": 3, "maxLength": 254},
            "timestamp": {"type": "integer", "minimum": MIN_TIMESTAMP, "maximum": MAX_TIMESTAMP},
            "event": {"type": "string", "minLength": 1, "maxLength": 128},
            "sg_event_id": {"type": "string", "maxLength": 256, "description": "empty: derived"},
            "sg_message_id": {"type": "string", "maxLength": 256},
            "smtp-id": {"type": "string", "maxLength": 256},
            "category": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "reason": {"type": "string"},
            "status": {"type": "string"},
            "response": {"type": "string"},
            "attempt": {
                "anyOf": [
                    {"type": "integer", "minimum": 0, "maximum": UINT32_MAX},
                    {"type": "string", "pattern": "^[0-9]{1,9}$"},
                ]
            },
            "type": {"type": "string"},
            "bounce_classification": {"type": "string"},
            "sg_machine_open": {"type": "boolean"},
            "url": {"type": "string"},
        },
        "anyOf": [
            {"required": ["sg_message_id"], "properties": {"sg_message_id": {"pattern": _NOT_BLANK}}},
            {"required": ["smtp-id"], "properties": {"smtp-id": {"pattern": _SMTP_ID}}},
        ],
    },
    "Address": {
        "type": "object",
        "required": ["address"],
        "properties": {
            "address": {"type": "string", "minLength": 3, "maxLength": 512},
            "name": {"type": "string"},
        },
    },
    "Tags": {
        "type": "object",
        "description": "Email API tags: at most 10 pairs of letters, digits, '.', '_', '-', '~'.",
        "maxProperties": MAX_TAGS,
        "propertyNames": {"minLength": 1, "maxLength": MAX_TAG_KEY, "pattern": _TAG_CHARS},
        "additionalProperties": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_TAG_VALUE,
            "pattern": _TAG_CHARS,
        },
    },
    "EmailData": {
        "type": "object",
        "required": ["id", "status"],
        "description": "An Email API Email resource; its status is the event's.",
        "properties": {
            "id": {"type": "string", "minLength": 1, "maxLength": 256},
            "status": {"type": "string", "minLength": 1, "maxLength": 64},
            "updatedAt": _DATE_TIME,
            "from": {"anyOf": [{"type": "string"}, _ref("Address")]},
            "to": {"type": "array", "items": {"anyOf": [{"type": "string"}, _ref("Address")]}},
            "tags": _ref("Tags"),
            "operationId": {"type": "string"},
        },
    },
    "OperationData": {
        "type": "object",
        "description": "The operation is named by the first non-empty of operation_id, operationId, id.",
        "properties": {name: _OPERATION_ID for name in ("operation_id", "operationId", "id")},
        "anyOf": [
            {"required": [name], "properties": {name: {"minLength": 1}}}
            for name in ("operation_id", "operationId", "id")
        ],
    },
    "CloudEvent": {
        "type": "object",
        "required": ["specversion", "id", "source", "type", "data"],
        "description": "A CloudEvent whose data is an Email API Email resource (status from data.status, "
        "time from data.updatedAt, else time), or a com.twilio.comms-api.operation.* event (time "
        "required). Times lie between 1971 and 2199 and carry an offset.",
        "properties": {
            "specversion": {"type": "string", "pattern": "^1\\."},
            "id": {"type": "string", "minLength": 1, "maxLength": 256},
            "source": {"type": "string", "minLength": 1},
            "type": {"type": "string", "minLength": 1, "maxLength": 128},
            "time": _DATE_TIME,
            "data": {"type": "object"},
        },
        "if": {"properties": {"type": {"pattern": _OPERATION_TYPE}}},
        "then": {"required": ["time"], "properties": {"data": _ref("OperationData")}},
        "else": {
            "properties": {"data": _ref("EmailData")},
            "anyOf": [
                {"required": ["time"]},
                {"required": ["data"], "properties": {"data": {"required": ["updatedAt"]}}},
            ],
        },
    },
    "InboundParsePost": {
        "type": "object",
        "description": "SendGrid Inbound Parse fields (default mode), or the whole MIME message in `email` "
        "(raw mode). At least one of headers, email, from, to, envelope is not blank.",
        "properties": {name: {"type": "string"} for name in _INBOUND_FIELDS},
        "patternProperties": {"^attachment[0-9]+$": {"type": "string", "format": "binary"}},
        "anyOf": [
            {"required": [name], "properties": {name: {"pattern": _NOT_BLANK}}} for name in IDENTIFYING_FIELDS
        ],
    },
}


def openapi_document(
    max_body_bytes: int, inbound_max_bytes: int, max_elements: int = DEFAULT_MAX_ELEMENTS
) -> dict[str, Any]:
    sendgrid_signing = [
        _header(SENDGRID_SIGNATURE_HEADER, f"base64 DER ECDSA P-256 signature. {_SIGNED}"),
        _header(SENDGRID_TIMESTAMP_HEADER, f"Unix seconds, signed before the body. {_SIGNED}"),
    ]
    twilio_signing = [
        _header(TWILIO_SIGNATURE_HEADER, f"base64 HMAC-SHA1 of the URL with the auth token. {_SIGNED}"),
        {
            "name": BODY_SHA256_PARAM,
            "in": "query",
            "required": False,
            "description": f"hex SHA-256 of the body, part of the signed URL. {_SIGNED}",
            "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        },
    ]
    inbound_refusals = _refusals(inbound_max_bytes, "multipart/form-data")
    inbound_refusals["503"]["description"] = (
        f"The mail cannot be stored now; SendGrid retries 5xx for 72 h. {_BUSY}"
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mailpulse ingest",
            "version": "1",
            "description": "Webhook receivers for email delivery status. A 2xx means Kafka acknowledged "
            "(acks=all) every accepted event. Every 4xx and 5xx body the app writes is an object with "
            "`error`. A method a path does not declare gets 405 (text/plain) with `Allow`.",
        },
        "paths": {
            SENDGRID_EVENTS: _batch(
                "SendGrid Event Webhook batch",
                "SendGridEvent",
                max_body_bytes,
                max_elements,
                sendgrid_signing,
            ),
            TWILIO_EVENTS: _batch(
                "Twilio Event Streams batch of CloudEvents",
                "CloudEvent",
                max_body_bytes,
                max_elements,
                twilio_signing,
            ),
            SENDGRID_INBOUND: {
                "post": {
                    "summary": "SendGrid Inbound Parse: one received mail becomes one INBOUND event",
                    "description": "4xx only for mail that must never be stored (SendGrid drops a mail on "
                    "any 4xx); attachments of unsupported types are recorded as rejected, not refused.",
                    "parameters": sendgrid_signing,
                    "requestBody": {
                        "required": True,
                        "content": {"multipart/form-data": {"schema": _ref("InboundParsePost")}},
                    },
                    "responses": {
                        "200": _answer("The mail's event is acknowledged by Kafka.", "InboundAccepted"),
                        "422": _answer("The form is no Inbound Parse post.", "InboundRejected"),
                        **inbound_refusals,
                    },
                }
            },
            "/healthz": _get(
                "Liveness",
                {
                    "200": _json(
                        "alive",
                        {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
                    )
                },
            ),
            "/readyz": _get(
                "Readiness: Kafka answers a metadata request, acknowledges publishes within the publish "
                "timeout, and ingest holds less than its cap of bytes for it",
                {
                    "200": _json(
                        "ready",
                        {"type": "object", "required": ["ready"], "properties": {"ready": {"const": True}}},
                    ),
                    "503": {
                        "description": f"not ready: the problems name why. {_BUSY}",
                        "content": {
                            JSON: {
                                "schema": {
                                    "type": "object",
                                    "required": ["ready", "problems"],
                                    "properties": {
                                        "ready": {"const": False},
                                        "problems": {
                                            "type": "array",
                                            "minItems": 1,
                                            "items": {"type": "string", "minLength": 1},
                                        },
                                    },
                                }
                            },
                            "text/plain": {},
                        },
                    },
                },
            ),
            "/openapi.json": _get("This description", {"200": _json("OpenAPI 3.1", {"type": "object"})}),
            "/metrics/": _get(
                "Prometheus metrics",
                {"200": {"description": "text exposition format", "content": {"text/plain": {}}}},
            ),
        },
        "components": {"schemas": _SCHEMAS},
    }
