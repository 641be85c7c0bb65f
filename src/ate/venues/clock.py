"""Injectable clocks and the venue server-time offset (reference §3.4).

Adapters stamp requests with the local clock and never widen ``recvWindow`` to hide skew: if the
measured skew would make the venue reject a signed request, signing is refused with a clear error.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol

from ate.venues.errors import ClockSkewError


class Clock(Protocol):
    def now_ms(self) -> int: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """Virtual time for tests and replays.

    With ``auto_advance`` a sleep moves time forward at once (backoff and rate-limit waits take no
    wall time). Without it, sleepers wait until ``advance`` passes their deadline.
    """

    def __init__(self, start_ms: int = 0, *, auto_advance: bool = False) -> None:
        self._now = start_ms
        self.auto_advance = auto_advance
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self.slept_ms = 0

    def now_ms(self) -> int:
        return self._now

    async def sleep(self, seconds: float) -> None:
        ms = max(0, int(seconds * 1000))
        self.slept_ms += ms
        if self.auto_advance:
            self._now += ms
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + ms, next(self._seq), fut))
        await fut

    async def advance(self, ms: int) -> None:
        """Move time forward, waking every sleeper whose deadline has passed, in deadline order."""
        target = self._now + ms
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not fut.done():
                fut.set_result(None)
            await asyncio.sleep(0)
        self._now = target
        for _ in range(3):
            await asyncio.sleep(0)


class ServerClock:
    """Tracks ``server - local`` time; refuses to stamp signed requests the venue would reject.

    Binance accepts ``timestamp < server + 1000`` and ``server - timestamp <= recvWindow``; Backpack
    accepts ``now <= timestamp + window``. ``margin_ms`` keeps room for network latency.
    """

    AHEAD_LIMIT_MS = 1000

    def __init__(self, clock: Clock, venue: str, *, margin_ms: int = 250) -> None:
        self.clock = clock
        self.venue = venue
        self.margin_ms = margin_ms
        self.offset_ms: int | None = None
        self.rtt_ms = 0
        self.measured_at_ms = 0

    def record(self, server_ms: int, sent_ms: int, received_ms: int) -> int:
        self.rtt_ms = max(0, received_ms - sent_ms)
        self.offset_ms = server_ms - (sent_ms + received_ms) // 2
        self.measured_at_ms = received_ms
        return self.offset_ms

    def stamp(self, window_ms: int) -> int:
        """Local timestamp for a signed request, or ClockSkewError if the venue would reject it."""
        if self.offset_ms is not None:
            lag = self.offset_ms + self.rtt_ms // 2 + self.margin_ms  # how far behind the server we arrive
            if lag > window_ms:
                raise ClockSkewError(
                    f"{self.venue}: local clock is {self.offset_ms} ms behind the server; a signed request "
                    f"would fall outside the {window_ms} ms window. Fix the system clock (NTP)."
                )
            if -self.offset_ms + self.margin_ms >= self.AHEAD_LIMIT_MS:
                raise ClockSkewError(
                    f"{self.venue}: local clock is {-self.offset_ms} ms ahead of the server; the venue rejects "
                    f"timestamps {self.AHEAD_LIMIT_MS} ms ahead. Fix the system clock (NTP)."
                )
        return self.clock.now_ms()
