"""Detects a consumer that is alive but stuck: a partition with lag whose commit does not move. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class _Progress:
    committed: int
    lag: int
    since: float  # when `committed` last changed (or the partition had no lag)


@dataclass(slots=True)
class StallDetector:
    stuck_after_s: float
    _progress: dict[int, _Progress] = field(default_factory=dict)

    def observe(self, partition: int, committed: int, end: int, now: float) -> None:
        """Record a partition's committed offset and log end offset at time ``now``."""
        lag = max(0, end - committed)
        seen = self._progress.get(partition)
        if seen is None or seen.committed != committed or lag == 0:
            self._progress[partition] = _Progress(committed, lag, now)
        else:
            seen.lag = lag

    def lags(self) -> dict[int, int]:
        return {p: s.lag for p, s in self._progress.items()}

    def stuck(self, now: float) -> list[int]:
        """Partitions with lag whose commit has not moved for at least ``stuck_after_s``."""
        return sorted(
            p for p, s in self._progress.items() if s.lag > 0 and now - s.since >= self.stuck_after_s
        )

    def forget(self, partitions: set[int]) -> None:
        for partition in partitions:
            self._progress.pop(partition, None)
