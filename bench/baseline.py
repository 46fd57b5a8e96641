"""The receiver as users commonly write it: Starlette, a pydantic model, aiokafka, one awaited
``send_and_wait`` per event. The bench serves it exactly like ingest (same server, core and load)."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import BaseModel, ConfigDict, TypeAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class SendGridEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    email: str
    timestamp: int
    event: str
    sg_event_id: str | None = None
    sg_message_id: str | None = None


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    type: str
    source: str
    time: str
    data: dict[str, Any]


def baseline_producer(bootstrap: str) -> AIOKafkaProducer:
    """aiokafka's defaults (no linger), with the durability ingest gives (acks=all)."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")


_SENDGRID = TypeAdapter(list[SendGridEvent])
_TWILIO = TypeAdapter(list[CloudEvent])


def create_baseline_app(producer: AIOKafkaProducer, topic: str) -> Starlette:
    async def sendgrid(request: Request) -> Response:
        events = _SENDGRID.validate_python(await request.json())
        for e in events:
            await producer.send_and_wait(topic, e.model_dump_json().encode(), key=e.email.encode())
        return JSONResponse({"accepted": len(events)})

    async def twilio(request: Request) -> Response:
        events = _TWILIO.validate_python(await request.json())
        for e in events:
            await producer.send_and_wait(topic, e.model_dump_json().encode(), key=e.source.encode())
        return JSONResponse({"accepted": len(events)})

    return Starlette(
        routes=[
            Route("/webhooks/sendgrid/events", sendgrid, methods=["POST"]),
            Route("/webhooks/twilio/events", twilio, methods=["POST"]),
        ]
    )
