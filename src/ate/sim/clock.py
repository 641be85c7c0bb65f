"""Replay clocks. Everything in the simulator reads time through one of these (``now_ms()``).

``ManualClock`` is moved explicitly: by tests, and by the replayer in as-fast-as-possible mode.
``ScaledClock`` runs from a replay start time at N× wall-clock speed (N=1: real time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class ManualClock:
    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def set(self, ts_ms: int) -> None:
        if ts_ms < self._now:
            raise ValueError(f"clock cannot go back: {ts_ms} < {self._now}")
        self._now = ts_ms

    def advance(self, ms: int) -> int:
        self.set(self._now + ms)
        return self._now


class ScaledClock:
    """Replay time = start + (wall elapsed × speed). ``wall`` is injectable (seconds, monotonic)."""

    def __init__(self, start_ms: int, speed: float, wall: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start_ms = start_ms
        self.speed = speed
        self._wall = wall
        self._t0 = wall()

    def now_ms(self) -> int:
        return self.start_ms + int((self._wall() - self._t0) * self.speed * 1000)

    def wall_seconds_until(self, ts_ms: int) -> float:
        return max(0.0, (ts_ms - self.now_ms()) / 1000 / self.speed)


class SteppingClock:
    """Real-time clock from ``start_ms`` that can also be jumped forward (``set``/``advance``).

    For network tests: clients that sign with wall-clock timestamps (after syncing the offset) stay
    inside recvWindow, while the test still decides when replayed data is applied."""

    def __init__(self, start_ms: int = 0, wall: Callable[[], float] = time.monotonic) -> None:
        self._wall = wall
        self._t0 = wall()
        self._base = start_ms

    def now_ms(self) -> int:
        return self._base + int((self._wall() - self._t0) * 1000)

    def set(self, ts_ms: int) -> None:
        """Jump forward to ``ts_ms``; a time already passed is ignored (the clock never goes back)."""
        now = self.now_ms()
        if ts_ms > now:
            self._base += ts_ms - now

    def advance(self, ms: int) -> int:
        self.set(self.now_ms() + ms)
        return self.now_ms()
