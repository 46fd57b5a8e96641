"""The OpenAPI 3.1 description of the analytics API, served at ``GET /api/openapi.json``. Parameters, their
choices and bounds come from analytics/queries.py (the parser's own lists), so the two cannot drift; a test
sends every documented parameter to the real app."""

from __future__ import annotations

from typing import Any

from analytics import queries as q
from schemas.mailbox_providers import NAMES
from schemas.times import EARLIEST, LATEST, iso_z

Schema = dict[str, Any]
JSON = "application/json"

_INSTANT = {
    "type": "string",
    "description": f"ISO-8601, UTC without an offset; in [{iso_z(EARLIEST)}, {iso_z(LATEST)}) (else 422)",
    "examples": ["2026-11-23T14:00:00Z"],
}
_FILTER = {"type": "string", "minLength": 1, "maxLength": 512}
_PARAMETERS: dict[str, tuple[str, Schema]] = {
    "from": ("Start of the range, floored to the minute (default: `to` minus 24 h).", _INSTANT),
    "to": ("End of the range (exclusive), ceiled to the minute (default: now).", _INSTANT),
    "provider": ("Only this provider (twilio, sendgrid).", _FILTER),
    "sender_domain": ("Only mail from this sender domain.", _FILTER),
    "recipient_domain": ("Only mail to this recipient domain.", _FILTER),
    "mailbox_provider": (
        "Only mail to this mailbox provider (by recipient domain; docs/mailbox-providers.md).",
        {"type": "string", "enum": list(NAMES)},
    ),
    "tag": ("Only mail with this tag, `key=value`.", {**_FILTER, "pattern": "^[^=]+=.+$"}),
    "bucket": (
        "Bucket width in seconds (default: the smallest giving at most 300 buckets).",
        {"type": "integer", "enum": list(q.BUCKETS)},
    ),
    "by": (
        "Dimension to break down by (`bounce_classification`: each message's bounce classification, '' "
        "for none).",
        {"type": "string", "enum": list(q.DIMENSIONS), "default": "recipient_domain"},
    ),
    "order": (
        "Sort key, descending: a rate of docs/figures.md or `messages` (null rates last).",
        {"type": "string", "enum": list(q.ORDERS), "default": "failure"},
    ),
    "min_volume": (
        "Leave out rows with fewer messages with an outcome.",
        {"type": "integer", "minimum": 0, "default": 1},
    ),
}
_LIMITS = {"/api/breakdown": 10, "/api/alerts": 50}

_ENDPOINTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "/api/summary": (
        "Volumes, messages by outcome, rates, funnel, time to deliver and to open (p50/p95/p99).",
        q.WINDOW_PARAMS,
    ),
    "/api/timeseries": ("Volumes, outcomes and rates per bucket.", q.BUCKETED_PARAMS),
    "/api/latency": ("Time to deliver p50/p95/p99 per bucket of delivery time.", q.BUCKETED_PARAMS),
    "/api/breakdown": ("Volumes, outcomes and rates per value of a dimension, ranked.", q.BREAKDOWN_PARAMS),
    "/api/funnel": (
        "Distinct messages that reached at least QUEUED, SENT, DELIVERED, OPENED, CLICKED.",
        q.WINDOW_PARAMS,
    ),
    "/api/alerts": ("The alert rules, and firings and resolves in range, newest first.", q.ALERTS_PARAMS),
}


def _parameter(path: str, name: str) -> Schema:
    if name == "limit":
        description, schema = (
            "Most rows returned.",
            {"type": "integer", "minimum": 1, "maximum": 1000, "default": _LIMITS[path]},
        )
    else:
        description, schema = _PARAMETERS[name]
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _error(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


_MESSAGE = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_PROBLEMS = {
    "type": "object",
    "properties": {"errors": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
    "required": ["errors"],
}


def openapi_document() -> Schema:
    paths = {
        path: {
            "get": {
                "summary": summary,
                "security": [{"bearer": []}],
                "parameters": [_parameter(path, name) for name in params],
                "responses": {
                    "200": _error("The answer (docs/figures.md defines every figure).", {"type": "object"}),
                    "401": _error("Missing or wrong bearer token.", _MESSAGE),
                    "422": _error("Bad parameters: every problem, as 'name: what is wrong'.", _PROBLEMS),
                    "500": _error("The query failed (details in the server log).", _MESSAGE),
                    "503": _error("No API token is configured: the API stays closed.", _MESSAGE),
                },
            }
        }
        for path, (summary, params) in _ENDPOINTS.items()
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mailpulse analytics API",
            "version": "1",
            "description": "Read-only deliverability analytics. Counts are distinct messages, exact.",
        },
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
