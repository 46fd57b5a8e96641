"""API time: a simulated wall clock that can run faster than real time. Pure: the source is injected."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def truncate_ms(value: datetime) -> datetime:
    """Milliseconds are the precision the Email API (and ClickHouse) keep."""
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


class SimClock:
    """``now() = start + (source() - origin) * acceleration``.

    ``source`` is a monotonic seconds counter (``time.monotonic`` by default, a ``ManualSource`` in
    tests). With ``acceleration`` 1000 one real second is about 17 API minutes, so lifecycles that take
    hours finish in seconds while every timestamp stays consistent.
    """

    def __init__(
        self,
        start: datetime | None = None,
        acceleration: float = 1.0,
        source: Callable[[], float] = time.monotonic,
    ) -> None:
        if acceleration <= 0:
            raise ValueError("acceleration must be positive")
        self.start = truncate_ms((start or datetime.now(UTC)).astimezone(UTC))
        self.acceleration = acceleration
        self.source = source
        self.origin = source()

    def now(self) -> datetime:
        elapsed = (self.source() - self.origin) * self.acceleration
        return truncate_ms(self.start + timedelta(seconds=elapsed))

    def real_seconds(self, api: timedelta) -> float:
        """Real seconds that ``api`` of API time take."""
        return api.total_seconds() / self.acceleration


class ManualSource:
    """A time source that only moves when told to (tests)."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds
