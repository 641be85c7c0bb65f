"""Strategies used only by the backtest tests and bench.

SupertrendLongFlat: long while Supertrend(10, 3) on closed candles points up, flat otherwise; all-in IOC
limit orders at the touch. ConstantHedge: long 1 BTC spot + short 1 BTC perp between two times."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, Decimal

from ate.data.candles import Candle
from ate.model import OrderIntent, Purpose, Side, TimeInForce
from ate.signals.atr_supertrend import UP, Supertrend
from ate.strategies.base import Strategy, StrategyContext


class SupertrendLongFlat(Strategy):
    name = "st_longflat"

    def __init__(self, market: str = "binance:BTCUSDT", period: int = 10, mult: float = 3.0) -> None:
        super().__init__()
        self.market = market
        self.venue, _, self.symbol = market.partition(":")
        self.st = Supertrend(period, mult)

    def on_candle(self, market: str, candle: Candle, ctx: StrategyContext) -> Sequence[OrderIntent]:
        if market != self.market:
            return ()
        want_long = self.st.update(candle.high, candle.low, candle.close) == UP
        book = ctx.book(market)
        inst = ctx.instrument(market)
        if book is None:
            return ()
        base = ctx.balance(self.venue, inst.base).free
        quote = ctx.balance(self.venue, inst.quote).free
        if want_long and base < inst.step_size:
            qty = (quote / book.ask / inst.step_size).to_integral_value(ROUND_FLOOR) * inst.step_size
            side, price, purpose = Side.BUY, book.ask, Purpose.ENTRY
        elif not want_long and base >= inst.step_size:
            qty = (base / inst.step_size).to_integral_value(ROUND_FLOOR) * inst.step_size
            side, price, purpose = Side.SELL, book.bid, Purpose.EXIT
        else:
            return ()
        if qty <= 0 or qty * price < inst.min_notional:
            return ()
        return (OrderIntent(self.venue, self.symbol, side, qty, price, self.name, purpose, tif=TimeInForce.IOC),)


class ConstantHedge(Strategy):
    """Long 1 BTC spot + short 1 BTC perp from `open_ms` to `close_ms` (both at candle closes)."""

    name = "carry_test"

    def __init__(self, open_ms: int, close_ms: int) -> None:
        super().__init__()
        self.open_ms, self.close_ms = open_ms, close_ms

    def on_candle(self, market: str, candle: Candle, ctx: StrategyContext) -> Sequence[OrderIntent]:
        if market != "binance_usdm:BTCUSDT" or candle.close_ms not in (self.open_ms, self.close_ms):
            return ()
        opening = candle.close_ms == self.open_ms
        spot, perp = ctx.book("binance:BTCUSDT"), ctx.book("binance_usdm:BTCUSDT")
        one = Decimal(1)
        purpose = Purpose.ENTRY if opening else Purpose.EXIT
        spot_qty = one if opening else ctx.instrument("binance:BTCUSDT").round_qty(ctx.balance("binance", "BTC").free)
        return (
            OrderIntent("binance", "BTCUSDT", Side.BUY if opening else Side.SELL, spot_qty,
                        spot.ask if opening else spot.bid, self.name, purpose, tif=TimeInForce.IOC),
            OrderIntent("binance_usdm", "BTCUSDT", Side.SELL if opening else Side.BUY, one,
                        perp.bid if opening else perp.ask, self.name, purpose, tif=TimeInForce.IOC,
                        reduce_only=not opening),
        )


def permissive_config(**overrides):
    """A config whose risk limits and emergency ladder never bind, so the test strategy trades alone."""
    from ate.config import parse_config

    data = {
        "mode": "backtest",
        "run_id": "bt-test",
        # the primary market (signal engine input) gets no data: only the test strategy acts
        "markets": {"primary": "backpack:BTC_USDC"},
        # the widest limits the config accepts (each bound and its reason is in the schema)
        "risk_limits": {"max_position_size_usd": 1e8, "max_daily_loss_pct": 0.25, "max_single_trade_pct": 0.25,
                        "emergency_stop_loss_pct": 0.5, "max_order_pct_of_capital": 0.5, "capital_usd": 1e8,
                        "max_price_deviation_pct": 0.5},
        "strategies": {"arbitrage": {"enabled": False}, "funding_carry": {"enabled": False},
                       "directional": {"enabled": False}},
    }
    data.update(overrides)
    return parse_config(data, env={})
