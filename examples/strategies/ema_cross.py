"""EMA cross: long while the fast EMA of closes is above the slow one, flat otherwise (spot, long/flat).

A walkthrough of this file is in docs/strategies.md. Run it with
    ate backtest --config examples/strategies/ema_cross.json --from 2024-01-01 --to 2024-04-01 \
        --data binance:BTCUSDT=data/binance_spot_BTCUSDT_1h.csv.gz
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ate.data.candles import Candle
from ate.model import OrderIntent
from ate.strategies.base import StrategyContext, blocked, market_scopes
from ate.strategies.plugin import UserStrategy


class EmaCrossParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    market: str = Field("binance:BTCUSDT", pattern=r"^[^:]+:[^:]+$")
    timeframe: Literal["1m", "5m", "15m", "1h", "4h", "1d"] = "1h"
    fast: int = Field(12, ge=1)
    slow: int = Field(26, ge=2)
    notional_usd: float = Field(1000.0, gt=0)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> EmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError("fast must be smaller than slow")
        return self


def ema_step(prev: float | None, value: float, period: int) -> float:
    """One step of an EMA with alpha 2/(period+1), seeded with the first value."""
    if prev is None:
        return value
    alpha = 2.0 / (period + 1)
    return prev + alpha * (value - prev)


class EmaCross(UserStrategy):
    name = "ema_cross"
    Params = EmaCrossParams

    def __init__(self, params: EmaCrossParams, *, name: str | None = None) -> None:
        super().__init__(params, name=name)
        self.timeframes = (params.timeframe,)

    def on_bar(self, market: str, timeframe: str, bar: Candle, ctx: StrategyContext) -> Sequence[OrderIntent]:
        p: EmaCrossParams = self.params
        if market != p.market:
            return ()
        # EMAs live in `memory`, so a restart resumes them instead of warming up again.
        m = self.memory
        m["fast"] = ema_step(m.get("fast"), bar.close, p.fast)
        m["slow"] = ema_step(m.get("slow"), bar.close, p.slow)
        m["bars"] = m.get("bars", 0) + 1
        if m["bars"] < p.slow or ctx.in_flight(self.name):
            return ()
        held = self.position(ctx, market)
        if m["fast"] > m["slow"] and not held:
            if blocked(ctx, [self.name, *market_scopes(market)]):
                return ()  # a signal module vetoes new entries here
            intent = self.buy_usd(ctx, market, p.notional_usd)
        elif m["fast"] < m["slow"] and held > 0:
            intent = self.close(ctx, market)
        else:
            return ()
        return (intent,) if intent is not None else ()
