"""The simulator's Binance REST faces as the tests see them: every request answered, and a way to spend an
IP's weight to the limit (the next request earns the venue's 429)."""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp

from ate.sim.binance_rest import BinanceRest


class Seen:
    """Every request the simulator's Binance REST faces (spot and USD-M) answer: (ms, path, status), the ms
    on `now` (the wall clock unless a test drives the simulator's clock by hand)."""

    def __init__(self, monkeypatch, now: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        self.requests: list[tuple[int, str, int]] = []
        self.face: BinanceRest | None = None
        original = BinanceRest._dispatch

        async def dispatch(face, request, route):
            if request.path.startswith("/api/v3"):
                self.face = face  # the spot face, whose weight the tests spend
            resp = await original(face, request, route)
            self.requests.append((now(), request.path, resp.status))
            return resp

        monkeypatch.setattr(BinanceRest, "_dispatch", dispatch)

    def spot(self, since: int = 0) -> list[tuple[int, str, int]]:
        return [r for r in self.requests[since:] if r[1].startswith("/api/v3")]


async def spend_weight_to_the_limit(url: str) -> None:
    """Another client on the same IP spends the minute's 6000 weight (exactly)."""
    async with aiohttp.ClientSession() as s:
        used = 0
        while used < 6000:
            path = "/api/v3/ticker/24hr" if 6000 - used >= 80 else "/api/v3/ping"
            async with s.get(url + path) as r:
                assert r.status == 200, await r.text()
                used = int(r.headers["X-MBX-USED-WEIGHT-1M"])
        assert used == 6000
