"""Read-only Deribit DVOL history (``public/get_volatility_index_data``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp

from ate.data.candles import Candle
from ate.venues.clock import Clock, SystemClock
from ate.venues.errors import VenueError, VenueRejected, VenueUnknown
from ate.venues.ratelimit import RateLimiter, Window
from ate.venues.rest import Prepared, Request, RestTransport

PATH = "/api/v2/public/get_volatility_index_data"
RESOLUTION_MS = {"1": 1000, "60": 60_000, "3600": 3_600_000, "43200": 43_200_000, "1D": 86_400_000}


class DeribitDialect:
    venue = "deribit"

    def prepare(self, req: Request) -> Prepared:
        return Prepared(f"{req.path}?{urlencode(req.params or {})}", None, {})

    def error(self, status: int, data: Any) -> VenueError:
        err = data.get("error", {}) if isinstance(data, dict) else {}
        msg = f"{err.get('message', '')} {err.get('data', '')}".strip() or str(data)[:200]
        if status >= 500:
            return VenueUnknown(self.venue, msg, status=status, code=err.get("code"))
        return VenueRejected(self.venue, msg, status=status, code=err.get("code"))

    def retry_after_s(self, status: int, headers: Mapping[str, str], strikes: int) -> float:
        return min(60.0, 2.0 ** (strikes - 1))


class DeribitClient:
    venue = "deribit"

    def __init__(self, rest_url: str, *, clock: Clock | None = None, session: aiohttp.ClientSession | None = None,
                 timeout_s: float = 10.0) -> None:
        self.clock = clock or SystemClock()
        # Deribit's public non-matching-engine limit is generous; 10 requests/s stays well inside it.
        self.limiter = RateLimiter("deribit", self.clock, weight=[Window("1S", 10, 1000)])
        self.rest = RestTransport(DeribitDialect(), rest_url, self.limiter, self.clock, session=session,
                                  timeout_s=timeout_s)

    async def close(self) -> None:
        await self.rest.close()

    async def dvol(self, currency: str, start_ms: int, end_ms: int, resolution: str = "1D") -> list[Candle]:
        """DVOL candles (open time in ms) in [start_ms, end_ms], oldest first, following ``continuation``."""
        step = RESOLUTION_MS[resolution]
        out: list[Candle] = []
        end = end_ms
        while True:
            params = {"currency": currency, "start_timestamp": start_ms, "end_timestamp": end,
                      "resolution": resolution}
            data = (await self.rest.request(Request("GET", PATH, params))).data
            result = data["result"]
            out += [Candle(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), 0.0, step)
                    for r in result["data"]]
            cont = result.get("continuation")
            if not cont or cont >= end or not result["data"]:
                break
            end = int(cont)
        return sorted({c.open_ms: c for c in out}.values(), key=lambda c: c.open_ms)

    async def latest(self, currency: str = "BTC", resolution: str = "1D") -> Candle | None:
        now = self.clock.now_ms()
        rows = await self.dvol(currency, now - 7 * 86_400_000, now, resolution)
        return rows[-1] if rows else None


class DvolPoller:
    """Pushes new DVOL candles to ``sink.on_dvol(currency, candle)`` every ``interval_s`` (Deribit's
    DVOL has no push channel in ate, so this is the one polled feed)."""

    def __init__(self, client: DeribitClient, sink: Any, currencies: tuple[str, ...] = ("BTC",), *,
                 interval_s: float = 300.0, resolution: str = "1D", lookback_ms: int = 7 * 86_400_000) -> None:
        self.client = client
        self.sink = sink
        self.currencies = currencies
        self.interval_s = interval_s
        self.resolution = resolution
        self.lookback_ms = lookback_ms
        self.errors = 0
        self.last_open: dict[str, int] = {}

    async def poll_once(self) -> None:
        now = self.client.clock.now_ms()
        for currency in self.currencies:
            for candle in await self.client.dvol(currency, now - self.lookback_ms, now, self.resolution):
                if candle.open_ms > self.last_open.get(currency, -1):
                    self.last_open[currency] = candle.open_ms
                    self.sink.on_dvol(currency, candle)

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except VenueError:
                self.errors += 1
            await self.client.clock.sleep(self.interval_s)
