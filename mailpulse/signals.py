"""How every long-running command stops: SIGINT or SIGTERM set one event, and the roles shut down in order."""

from __future__ import annotations

import asyncio
import signal


async def until_signal() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (call inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
