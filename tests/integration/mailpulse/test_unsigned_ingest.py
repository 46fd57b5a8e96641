"""Unsigned ingest, allowed explicitly: the role starts on the real broker and warns."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.cli_process import start_cli

pytestmark = [pytest.mark.kafka]


def test_ingest_allowed_unsigned_starts_and_logs_a_warning(tmp_path: Path) -> None:
    """A real start (embedded Kafka): it serves, warns naming the unsigned endpoints, and stops on SIGTERM."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAILPULSE_")},
        "MAILPULSE_DATA_DIR": str(tmp_path),
        "MAILPULSE_ALLOW_UNSIGNED": "true",
        "MAILPULSE_TWILIO_AUTH_TOKEN": "tw",
    }
    proc, lines = start_cli(["ingest", "--port", "0"], env, "accepts unsigned events")
    try:
        warnings = [line for line in lines if "accepts unsigned events" in line]
        assert len(warnings) == 1 and "WARNING" in warnings[0], lines
        assert "/webhooks/sendgrid/events, /webhooks/sendgrid/inbound (" in warnings[0]
        assert proc.poll() is None, lines
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, lines
