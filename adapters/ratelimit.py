"""A token bucket over an injected clock. Pure: used by the poller (to stay under the API's rate) and by
the Email API simulator (to answer 429 above its configured rate)."""

from __future__ import annotations

from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; ``clock`` returns seconds (monotonic)."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._tokens = burst
        self._at = clock()

    def _refill(self) -> float:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        return now

    def try_take(self) -> float:
        """Take a token: 0.0 when one was there, else the seconds until one will be (none taken)."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

    def reserve(self) -> float:
        """Take a token now or in the future; the caller waits the returned seconds before using it.
        Reservations queue up: n callers at once wait 0, 1/rate, 2/rate, … (beyond the saved burst)."""
        self._refill()
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
