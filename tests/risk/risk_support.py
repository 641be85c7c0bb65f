from __future__ import annotations

import asyncio
from decimal import Decimal

from ate.model import Instrument, MarketKind

D = Decimal
SPOT = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, tick_size=D("0.01"),
                  step_size=D("0.00001"), min_qty=D("0.00001"), min_notional=D("5"))
PERP = Instrument("binance", "BTCUSDT_PERP", "BTC", "USDT", MarketKind.PERP, tick_size=D("0.1"),
                  step_size=D("0.001"), min_qty=D("0.001"), min_notional=D("100"))
BP_SPOT = Instrument("backpack", "BTC_USDC", "BTC", "USDC", MarketKind.SPOT, tick_size=D("0.1"),
                     step_size=D("0.0001"), min_qty=D("0.0001"), min_notional=D("1"))


class FakeClock:
    """Epoch-ms clock the tests drive; ``sleep`` advances it instead of waiting."""

    def __init__(self, now_ms: int = 1_764_028_800_000) -> None:  # 2025-11-25 00:00 UTC
        self.now = now_ms

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms

    async def sleep(self, seconds: float) -> None:
        """Injected into code under test: returns once the test has advanced the clock far enough."""
        target = self.now + seconds * 1000
        while self.now < target:
            await asyncio.sleep(0)

    async def run_for(self, ms: int, step: int = 5) -> None:
        """Advance in small steps, letting every waiting task run at each one."""
        for _ in range(0, ms, step):
            self.now += step
            for _ in range(5):
                await asyncio.sleep(0)
