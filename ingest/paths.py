"""The webhook endpoints' paths: what providers are configured to call."""

from __future__ import annotations

SENDGRID_EVENTS = "/webhooks/sendgrid/events"
TWILIO_EVENTS = "/webhooks/twilio/events"
SENDGRID_INBOUND = "/webhooks/sendgrid/inbound"
