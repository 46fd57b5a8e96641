"""The error answers every endpoint shares: a JSON object whose ``error`` says what is wrong."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

from schemas.signatures import SignatureError

# Seconds a provider should wait before retrying after a 503 (Kafka did not acknowledge in time).
RETRY_AFTER_S = "5"


class FastJSONResponse(JSONResponse):
    """JSONResponse rendered by orjson (stdlib json cost more than the rest of a small answer)."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:  # what orjson refuses (lone surrogates, non-str keys): the stdlib's way
            return super().render(content)


def error(status: int, message: str, **extra: Any) -> FastJSONResponse:
    return FastJSONResponse({"error": message, **extra}, status_code=status)


def signature_refused(exc: SignatureError) -> FastJSONResponse:
    """401 when no signature was sent, 403 when it is wrong or stale; the reason says which."""
    if exc.missing:
        response = error(401, exc.reason)
        response.headers["WWW-Authenticate"] = 'Signature realm="mailpulse webhooks"'
        return response
    return error(403, exc.reason)


def unavailable(message: str) -> FastJSONResponse:
    """503 with Retry-After: nothing was acknowledged, the provider must retry."""
    return FastJSONResponse({"error": message}, status_code=503, headers={"Retry-After": RETRY_AFTER_S})
