"""Mean reversion: buy when the close is `entry_z` standard deviations below its rolling mean, sell when it
is back above `exit_z` (or `stop_pct` below the entry). Spot, long/flat.

A walkthrough of this file is in docs/strategies.md. Run it with
    ate backtest --config examples/strategies/mean_reversion.json --from 2024-01-01 --to 2024-04-01 \
        --data binance:BTCUSDT=data/binance_spot_BTCUSDT_1h.csv.gz
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ate.data.candles import Candle
from ate.model import Fill, Order, OrderIntent, Side
from ate.strategies.base import StrategyContext, blocked, market_scopes
from ate.strategies.plugin import UserStrategy


class MeanReversionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    market: str = Field("binance:BTCUSDT", pattern=r"^[^:]+:[^:]+$")
    timeframe: Literal["1m", "5m", "15m", "1h", "4h", "1d"] = "1h"
    lookback: int = Field(48, ge=3)
    entry_z: float = Field(2.0, gt=0)
    exit_z: float = 0.0
    stop_pct: float = Field(0.05, gt=0, lt=1)
    notional_usd: float = Field(1000.0, gt=0)


def zscore(window: Sequence[float], value: float) -> float | None:
    """How many sample standard deviations `value` is from the mean of `window` (None if flat)."""
    sd = statistics.stdev(window)
    return None if sd == 0 else (value - statistics.fmean(window)) / sd


class MeanReversion(UserStrategy):
    name = "mean_reversion"
    Params = MeanReversionParams

    def __init__(self, params: MeanReversionParams, *, name: str | None = None) -> None:
        super().__init__(params, name=name)
        self.timeframes = (params.timeframe,)

    def on_bar(self, market: str, timeframe: str, bar: Candle, ctx: StrategyContext) -> Sequence[OrderIntent]:
        p: MeanReversionParams = self.params
        if market != p.market:
            return ()
        closes = self.memory.setdefault("closes", [])
        z = zscore(closes, bar.close) if len(closes) == p.lookback else None
        closes.append(bar.close)
        del closes[:-p.lookback]
        if z is None or ctx.in_flight(self.name):
            return ()
        held = self.position(ctx, market)
        entry = self.memory.get("entry_price")
        if not held and z <= -p.entry_z:
            if blocked(ctx, [self.name, *market_scopes(market)]):
                return ()
            intent = self.buy_usd(ctx, market, p.notional_usd, reason=f"z={z:.2f}")
        elif held > 0 and (z >= p.exit_z or (entry is not None and bar.close <= entry * (1 - p.stop_pct))):
            intent = self.close(ctx, market, reason=f"z={z:.2f}")
        else:
            return ()
        return (intent,) if intent is not None else ()

    def on_order(self, order: Order, fill: Fill | None, ctx: StrategyContext) -> Sequence[OrderIntent]:
        # The average entry price, for the stop; cleared once flat.
        held = self.holdings.get(f"{order.venue}:{order.symbol}", Decimal(0))
        if fill is not None and fill.side is Side.BUY and held > 0:
            before = held - fill.qty
            prev = Decimal(str(self.memory.get("entry_price") or 0))
            self.memory["entry_price"] = float((prev * before + fill.price * fill.qty) / held)
        if held <= 0:
            self.memory.pop("entry_price", None)
        return ()
