"""Binance rate limits for the simulator: per-IP request weight and per-account order counts (§3.5).

Windows are fixed and aligned to the (simulated) clock. Over the weight limit a client gets 429 with
``Retry-After`` (seconds to the window's end); a client that sends again while told to wait is banned
with 418, the ban doubling from 2 minutes up to 3 days for repeat offenders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ate.sim.binance_auth import ApiError

_LETTER = {1_000: "S", 60_000: "M", 3_600_000: "H", 86_400_000: "D"}
_NAME = {1_000: "SECOND", 60_000: "MINUTE", 3_600_000: "HOUR", 86_400_000: "DAY"}
BAN_MIN_MS = 120_000
BAN_MAX_MS = 3 * 86_400_000


@dataclass(frozen=True, slots=True)
class Limit:
    kind: str  # REQUEST_WEIGHT or ORDERS
    unit_ms: int
    num: int
    limit: int

    @property
    def window_ms(self) -> int:
        return self.unit_ms * self.num

    @property
    def suffix(self) -> str:
        return f"{self.num}{_LETTER[self.unit_ms]}"

    def as_json(self) -> dict:
        return {"rateLimitType": self.kind, "interval": _NAME[self.unit_ms], "intervalNum": self.num,
                "limit": self.limit}


SPOT_LIMITS = (Limit("REQUEST_WEIGHT", 60_000, 1, 6000), Limit("ORDERS", 1_000, 10, 50),
               Limit("ORDERS", 86_400_000, 1, 160_000), Limit("RAW_REQUESTS", 60_000, 5, 300_000))
USDM_LIMITS = (Limit("REQUEST_WEIGHT", 60_000, 1, 2400), Limit("ORDERS", 1_000, 10, 300),
               Limit("ORDERS", 60_000, 1, 1200))


@dataclass
class _Window:
    start: int = -1
    used: int = 0

    def roll(self, now: int, size: int) -> None:
        start = now - now % size
        if start != self.start:
            self.start, self.used = start, 0


@dataclass
class _Client:
    weight: _Window = field(default_factory=_Window)
    told_to_wait_until: int = 0
    banned_until: int = 0
    bans: int = 0


class RateLimiter:
    def __init__(self, limits: tuple[Limit, ...], ban_418: bool = False) -> None:
        self.weight_limit = next(x for x in limits if x.kind == "REQUEST_WEIGHT")
        self.order_limits = [x for x in limits if x.kind == "ORDERS"]
        self.limits = limits
        self.ban_418 = ban_418
        self._clients: dict[str, _Client] = {}
        self._orders: dict[tuple[str, int], _Window] = {}

    def used_weight(self, ip: str, now: int) -> int:
        c = self._clients.setdefault(ip, _Client())
        c.weight.roll(now, self.weight_limit.window_ms)
        return c.weight.used

    def admit(self, ip: str, weight: int, now: int) -> None:
        """Raise 418/429 if the IP may not send a request of this weight now."""
        c = self._clients.setdefault(ip, _Client())
        if c.banned_until > now:
            raise self._ban_error(c, now)
        c.weight.roll(now, self.weight_limit.window_ms)
        if now < c.told_to_wait_until or c.weight.used + weight > self.weight_limit.limit:
            if now < c.told_to_wait_until or self.ban_418:
                c.bans += 1
                c.banned_until = now + min(BAN_MAX_MS, BAN_MIN_MS * 2 ** (c.bans - 1))
                raise self._ban_error(c, now)
            window_end = c.weight.start + self.weight_limit.window_ms
            c.told_to_wait_until = window_end
            lim = self.weight_limit
            raise ApiError(429, -1003, f"Too much request weight used; current limit is {lim.limit} request weight "
                                       f"per {lim.num} {_NAME[lim.unit_ms]}. Please use WebSocket Streams for live "
                                       "updates to avoid polling the API.",
                           {"Retry-After": str(max(1, -(-(window_end - now) // 1000)))})

    def charge(self, ip: str, weight: int, now: int) -> int:
        c = self._clients.setdefault(ip, _Client())
        c.weight.roll(now, self.weight_limit.window_ms)
        c.weight.used += weight
        return c.weight.used

    def _ban_error(self, c: _Client, now: int) -> ApiError:
        return ApiError(418, -1003, f"Way too much request weight used; IP banned until {c.banned_until}. "
                                    "Please use WebSocket Streams for live updates to avoid bans.",
                        {"Retry-After": str(max(1, -(-(c.banned_until - now) // 1000)))})

    def count_order(self, account: str, now: int) -> dict[str, str]:
        """Count one new order against every order limit; raise 429 -1015 if one is full.
        Returns the ``X-MBX-ORDER-COUNT-*`` headers."""
        windows = []
        for i, lim in enumerate(self.order_limits):
            w = self._orders.setdefault((account, i), _Window())
            w.roll(now, lim.window_ms)
            if w.used + 1 > lim.limit:
                raise ApiError(429, -1015, f"Too many new orders; current limit is {lim.limit} orders per "
                                           f"{lim.num} {_NAME[lim.unit_ms]}.")
            windows.append((lim, w))
        for _, w in windows:
            w.used += 1
        return {f"X-MBX-ORDER-COUNT-{lim.suffix}": str(w.used) for lim, w in windows}
