"""The OpenAPI 3.1 description of ingest, served at ``GET /openapi.json``. Written by hand, kept next
to the endpoints; tests check that every answer the app gives is described here."""

from __future__ import annotations

from typing import Any

from ingest.signatures import (
    BODY_SHA256_PARAM,
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
)

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
        "503": _answer(
            "Kafka did not acknowledge in time; nothing was acknowledged, retry later.",
            headers={"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
        ),
    }


def _header(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


def _batch(summary: str, item: str, limit: int, signing: list[Schema]) -> Schema:
    return {
        "post": {
            "summary": summary,
            "description": "Each element is validated on its own: valid ones are published, invalid ones "
            "go to the dead-letter topic, and the answer lists every problem by index and field.",
            "parameters": signing,
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": {"type": "array", "items": _ref(item), "maxItems": 100_000}}},
            },
            "responses": {
                "200": _answer("Every valid event is acknowledged by Kafka.", "BatchResult"),
                "422": _answer("No element of the batch is valid.", "BatchRejected"),
                **_refusals(limit, JSON),
            },
        }
    }


_INBOUND_FIELDS = (
    "headers", "email", "dkim", "content-ids", "to", "from", "cc", "subject", "text", "html", "sender_ip",
    "spam_report", "spam_score", "envelope", "attachments", "attachment-info", "charsets", "SPF",
)  # fmt: skip
_SIGNED = "Required when the matching key is configured."
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
            "rejected": {"type": "integer"},
            "errors": {"type": "array", "items": _ref("Problem")},
        },
    },
    "BatchRejected": {
        "type": "object",
        "required": ["error", "rejected", "errors"],
        "properties": {
            "error": {"type": "string", "minLength": 1},
            "rejected": {"type": "integer"},
            "errors": {"type": "array", "items": _ref("Problem")},
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
        "description": "One SendGrid Event Webhook event; sg_message_id or smtp-id must identify the "
        "message. Other keys are kept (custom args).",
        "properties": {
            "email": {"type": "string", "minLength": 3, "maxLength": 512},
            "timestamp": {"type": "integer", "minimum": 946684800, "maximum": 4102444800},
            "event": {"type": "string", "minLength": 1, "maxLength": 128},
            "sg_event_id": {"type": "string"},
            "sg_message_id": {"type": "string"},
            "smtp-id": {"type": "string"},
            "category": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "reason": {"type": "string"},
            "status": {"type": "string"},
            "response": {"type": "string"},
            "attempt": {"type": ["integer", "string"]},
            "type": {"type": "string"},
            "sg_machine_open": {"type": "boolean"},
            "url": {"type": "string"},
        },
    },
    "CloudEvent": {
        "type": "object",
        "required": ["specversion", "id", "source", "type", "data"],
        "description": "A CloudEvent whose data is an Email API Email resource (status from data.status), "
        "or a com.twilio.comms-api.operation.* event.",
        "properties": {
            "specversion": {"type": "string", "pattern": "^1\\."},
            "id": {"type": "string", "minLength": 1, "maxLength": 256},
            "source": {"type": "string", "minLength": 1},
            "type": {"type": "string", "minLength": 1, "maxLength": 128},
            "time": {"type": "string", "format": "date-time"},
            "data": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "status": {"type": "string"},
                    "updatedAt": {"type": "string", "format": "date-time"},
                    "from": {"type": "object", "properties": {"address": {"type": "string"}}},
                    "to": {"type": "array", "items": {"type": "object"}},
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                    "operationId": {"type": "string"},
                },
            },
        },
    },
    "InboundParsePost": {
        "type": "object",
        "description": "SendGrid Inbound Parse fields (default mode), or the whole MIME message in `email` "
        "(raw mode). At least one of headers, email, from, to, envelope.",
        "properties": {name: {"type": "string"} for name in _INBOUND_FIELDS},
        "patternProperties": {"^attachment[0-9]+$": {"type": "string", "format": "binary"}},
    },
}


def openapi_document(max_body_bytes: int, inbound_max_bytes: int) -> dict[str, Any]:
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
    inbound_refusals["503"]["description"] = "The mail cannot be stored now; SendGrid retries 5xx for 72 h."
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mailpulse ingest",
            "version": "1",
            "description": "Webhook receivers for email delivery status. A 2xx means Kafka acknowledged "
            "(acks=all) every accepted event. Every 4xx and 5xx body is an object with `error`.",
        },
        "paths": {
            "/webhooks/sendgrid/events": _batch(
                "SendGrid Event Webhook batch", "SendGridEvent", max_body_bytes, sendgrid_signing
            ),
            "/webhooks/twilio/events": _batch(
                "Twilio Event Streams batch of CloudEvents", "CloudEvent", max_body_bytes, twilio_signing
            ),
            "/webhooks/sendgrid/inbound": {
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
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "responses": {
                        "200": {
                            "description": "alive",
                            "content": {
                                JSON: {
                                    "schema": {"type": "object", "properties": {"status": {"const": "ok"}}}
                                }
                            },
                        }
                    },
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: Kafka answers a metadata request within the publish timeout",
                    "responses": {
                        "200": {"description": "ready", "content": {JSON: {"schema": {"type": "object"}}}},
                        "503": {
                            "description": "Kafka unreachable",
                            "content": {JSON: {"schema": {"type": "object"}}},
                        },
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This description",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {JSON: {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/metrics/": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {"description": "text exposition format", "content": {"text/plain": {}}}
                    },
                }
            },
        },
        "components": {"schemas": _SCHEMAS},
    }
