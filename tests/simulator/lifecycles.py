"""Simulated lifecycles of seconds to minutes, so a simulator run settles in about a second at x400."""

from __future__ import annotations

from simulator.lifecycle import Outcomes

MINUTES = (5.0, 60.0)
FAST = Outcomes(
    send_s=(0.5, 2.0),
    slow_send_s=MINUTES,
    open_after_s=MINUTES,
    reopen_after_s=MINUTES,
    bounce_after_s=MINUTES,
    inbound_after_s=MINUTES,
)
