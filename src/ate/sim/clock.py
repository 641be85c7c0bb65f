"""Replay clocks. Everything in the simulator reads time through one of these (``now_ms()``).

``ManualClock`` is moved explicitly: by tests, and by the replayer in as-fast-as-possible mode.
``ScaledClock`` runs from a replay start time at N× wall-clock speed (N=1: real time).

The two clock modes of a simulator (``sim.clock``):

- ``replay``: the world runs on the data's own timestamps (a ScaledClock from the replay start, or
  a clock a test drives). Clients must share that clock (the in-process engine does).
- ``wall``: the data is re-stamped onto the present before it is replayed (:class:`WallStamp`):
  data time ``t`` happens at wall time ``W + (t - T) / speed``, where ``T`` is the replay start and
  ``W`` the wall time the simulator started. The world's clock is then the wall clock, so every
  timestamp a face emits or checks is wall time at any speed, and any client that keeps its system
  clock in sync (an unmodified ``ate run``, ccxt, a user's bot) works against it. At speed N a
  candle of the data lasts 1/N of its interval on the wire, and an 8 h funding period 8/N hours.
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


class WallStamp:
    """Data time -> wall time for the ``wall`` mode: ``wall_ms(t) = wall_start + (t - data_start) / speed``.

    In ``replay`` mode the world uses data time as is (:func:`same_time`)."""

    def __init__(self, data_start_ms: int, wall_start_ms: int, speed: float) -> None:
        if speed <= 0:
            raise ValueError("the wall clock mode needs a replay speed > 0 (as fast as possible has no wall time)")
        self.data_start_ms = data_start_ms
        self.wall_start_ms = wall_start_ms
        self.speed = speed

    def __call__(self, data_ms: int) -> int:
        return self.wall_start_ms + round((data_ms - self.data_start_ms) / self.speed)

    def data_ms(self, wall_ms: int) -> int:
        """The inverse: which data time is replayed at ``wall_ms``."""
        return self.data_start_ms + round((wall_ms - self.wall_start_ms) * self.speed)


def same_time(data_ms: int) -> int:
    """The ``replay`` mode's stamp: data time is world time."""
    return data_ms


def wall_clock(now_ms: int) -> ScaledClock:
    """The world clock of the ``wall`` mode: real time from ``now_ms`` (the wall time at start)."""
    return ScaledClock(now_ms, 1.0)


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
