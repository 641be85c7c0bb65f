"""Rate limiting shared by every request to one venue (reference §3.5, §8.4).

Each limit is a counter over a clock-aligned fixed window (Binance windows reset at :00, :10, ...).
Requests wait for headroom below ``safety`` × limit, so the venue's own 429 is never reached in normal
operation; the counters are reconciled upward with the usage the venue reports in its headers. After
a 429 or 418 the whole venue pauses until the venue's Retry-After has passed, on ``pause_clock``: the
engine passes the wall clock (the venue counts wall seconds, whatever clock the engine replays on);
``on_pause`` lets it persist the pause so a restart inside it waits it out too (``restore``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ate.venues.clock import Clock

log = logging.getLogger("ate.venues.ratelimit")

_UNIT_MS = {"S": 1000, "M": 60_000, "H": 3_600_000, "D": 86_400_000}
_HEADER = re.compile(r"x-mbx-(used-weight|order-count)-(\d+)([smhd])$", re.IGNORECASE)


def interval_ms(spec: str) -> int:
    """'1M' -> 60000, '10S' -> 10000 (Binance header and rateLimits notation)."""
    return int(spec[:-1]) * _UNIT_MS[spec[-1].upper()]


@dataclass(slots=True)
class Window:
    """One limit: at most ``limit`` units per clock-aligned ``window_ms``."""

    name: str
    limit: int
    window_ms: int
    used: int = 0
    start_ms: int = 0

    def roll(self, now_ms: int) -> None:
        start = now_ms - now_ms % self.window_ms
        if start != self.start_ms:
            self.start_ms, self.used = start, 0

    def wait_ms(self, units: int, now_ms: int, cap: int) -> int:
        """0 if ``units`` fit under ``cap`` now, else the time until the window resets."""
        self.roll(now_ms)
        if units == 0 or self.used + units <= cap:
            return 0
        return self.start_ms + self.window_ms - now_ms

    def observe(self, used: int, now_ms: int) -> None:
        self.roll(now_ms)
        if used > self.used:
            self.used = used


class RateLimiter:
    """Request-weight and order-count windows of one venue, plus a venue-wide pause."""

    def __init__(self, venue: str, clock: Clock, *, weight: list[Window], orders: list[Window] = (),
                 safety: float = 0.9, pause_clock: Clock | None = None) -> None:
        self.venue = venue
        self.clock = clock
        self.pause_clock = pause_clock or clock
        self.weight = {w.name: w for w in weight}
        self.orders = {w.name: w for w in orders}
        self.safety = safety
        self.paused_until_ms = 0  # on pause_clock
        self.pause_reason = ""
        self.throttled_ms = 0
        # (venue, until ms on pause_clock, reason) for every new or longer pause: the engine persists it.
        self.on_pause: Callable[[str, int, str], None] | None = None

    def _cap(self, w: Window) -> int:
        return max(1, int(w.limit * self.safety))

    async def acquire(self, weight: int, orders: int = 0) -> None:
        """Wait until the request fits in every window, then charge it."""
        while True:
            paused = self.paused_until_ms - self.pause_clock.now_ms()
            if paused > 0:
                self.throttled_ms += paused
                await self.pause_clock.sleep(paused / 1000)
                continue
            now = self.clock.now_ms()
            wait = 0
            for w in self.weight.values():
                wait = max(wait, w.wait_ms(weight, now, self._cap(w)))
            for w in self.orders.values():
                wait = max(wait, w.wait_ms(orders, now, self._cap(w)))
            if wait <= 0:
                break
            self.throttled_ms += wait
            await self.clock.sleep(wait / 1000)
        for w in self.weight.values():
            w.used += weight
        if orders:
            for w in self.orders.values():
                w.used += orders

    def configure(self, rate_limits: list[dict]) -> None:
        """Adopt the limits a Binance venue publishes in ``exchangeInfo.rateLimits`` (reference §3.5)."""
        for rl in rate_limits:
            kind = rl.get("rateLimitType")
            table = self.weight if kind == "REQUEST_WEIGHT" else self.orders if kind == "ORDERS" else None
            if table is None:
                continue
            name = f"{rl['intervalNum']}{rl['interval'][0]}"
            window_ms = interval_ms(name)
            current = table.get(name)
            if current is None:
                table[name] = Window(name, int(rl["limit"]), window_ms)
            else:
                current.limit = int(rl["limit"])

    def pause(self, seconds: float, reason: str) -> None:
        until = self.pause_clock.now_ms() + int(seconds * 1000)
        if until > self.paused_until_ms:
            self.paused_until_ms = until
            self.pause_reason = reason
            log.warning("venue paused", extra={"venue": self.venue, "seconds": seconds, "reason": reason,
                                               "until_ms": until})
            if self.on_pause is not None:
                self.on_pause(self.venue, until, reason)

    def restore(self, until_ms: int, reason: str) -> None:
        """Adopt a pause persisted by an earlier run (ms on pause_clock); one already over changes nothing."""
        if until_ms > max(self.paused_until_ms, self.pause_clock.now_ms()):
            self.paused_until_ms = until_ms
            self.pause_reason = reason

    @property
    def paused(self) -> bool:
        return self.pause_clock.now_ms() < self.paused_until_ms

    def pause_left_s(self) -> float:
        return max(0.0, (self.paused_until_ms - self.pause_clock.now_ms()) / 1000)

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """Reconcile with X-MBX-USED-WEIGHT-<n><u> / X-MBX-ORDER-COUNT-<n><u> reported by the venue."""
        now = self.clock.now_ms()
        for name, value in headers.items():
            m = _HEADER.match(name)
            if not m:
                continue
            table = self.weight if m.group(1).lower() == "used-weight" else self.orders
            window = table.get(f"{m.group(2)}{m.group(3).upper()}")
            if window is not None and value.isdigit():
                window.observe(int(value), now)

    def headroom(self) -> dict[str, float]:
        """Fraction of each limit still free in the current window."""
        now = self.clock.now_ms()
        out = {}
        for prefix, table in (("weight", self.weight), ("orders", self.orders)):
            for w in table.values():
                w.roll(now)
                out[f"{prefix}_{w.name}"] = 1 - w.used / w.limit
        return out

    def usage(self) -> dict[str, tuple[int, int]]:
        """(used, limit) of every window, e.g. {"weight_1M": (120, 6000)} (metrics)."""
        now = self.clock.now_ms()
        out = {}
        for prefix, table in (("weight", self.weight), ("orders", self.orders)):
            for w in table.values():
                w.roll(now)
                out[f"{prefix}_{w.name}"] = (w.used, w.limit)
        return out


def binance_spot_limiter(clock: Clock, **kw) -> RateLimiter:
    return RateLimiter("binance_spot", clock, weight=[Window("1M", 6000, 60_000)],
                       orders=[Window("10S", 50, 10_000), Window("1D", 160_000, 86_400_000)], **kw)


def binance_usdm_limiter(clock: Clock, **kw) -> RateLimiter:
    return RateLimiter("binance_usdm", clock, weight=[Window("1M", 2400, 60_000)],
                       orders=[Window("10S", 300, 10_000), Window("1M", 1200, 60_000)], **kw)


def backpack_limiter(clock: Clock, **kw) -> RateLimiter:
    return RateLimiter("backpack", clock, weight=[Window("1M", 2000, 60_000)], **kw)


def backpack_history_limiter(clock: Clock, **kw) -> RateLimiter:
    """Klines and trades history: 30 requests per minute, on top of the general limit."""
    return RateLimiter("backpack_history", clock, weight=[Window("1M", 30, 60_000)], **kw)
