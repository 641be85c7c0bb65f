"""The UserStrategy API: bars per timeframe, own holdings net of fees (dust never blocks), memory that survives
a restart, multi-leg groups built whole or not at all."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from ate.backtest.data import instrument_for
from ate.data.candles import Candle
from ate.model import Fill, Order, OrderType, Severity, Side
from ate.strategies.base import SimpleContext
from ate.strategies.loader import resolve_class
from ate.strategies.plugin import UserStrategy

ROOT = Path(__file__).resolve().parents[2]
MKT = "binance:BTCUSDT"
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


class Recorder(UserStrategy):
    name = "recorder"
    timeframes = ("1m", "15m")

    def __init__(self, params=None, *, name=None):
        super().__init__(params, name=name)
        self.bars: list[tuple[str, Candle]] = []

    def on_bar(self, market, timeframe, bar, ctx):
        self.bars.append((timeframe, bar))
        return ()


def ctx_for(now_ms: int = T0) -> SimpleContext:
    ctx = SimpleContext(now_ms=now_ms, instruments={MKT: instrument_for(MKT)})
    ctx.set_book(MKT, "42000", "42000.01")
    return ctx


def minute(i: int, close: float) -> Candle:
    return Candle(T0 + i * 60_000, close - 1, close + 2, close - 3, close, 1.5)


def test_bars_per_timeframe_fold_the_minutes():
    s, ctx = Recorder(), ctx_for()
    for i in range(32):
        s.on_candle(MKT, minute(i, 100.0 + i), ctx)
    ones = [b for tf, b in s.bars if tf == "1m"]
    fifteens = [b for tf, b in s.bars if tf == "15m"]
    assert len(ones) == 32
    assert [(b.open_ms, b.open, b.high, b.low, b.close, b.volume) for b in fifteens] == [
        (T0, 99.0, 116.0, 97.0, 114.0, 22.5),
        (T0 + 15 * 60_000, 114.0, 131.0, 112.0, 129.0, 22.5),
    ]


def test_a_timeframe_finer_than_the_feed_is_reported_once_not_invented():
    s, ctx = Recorder(), ctx_for()
    hour = Candle(T0, 1, 2, 0.5, 1.5, 10, interval_ms=3_600_000)
    s.on_candle(MKT, hour, ctx)
    s.on_candle(MKT, Candle(T0 + 3_600_000, 1, 2, 0.5, 1.5, 10, interval_ms=3_600_000), ctx)
    assert s.bars == []
    events = s.drain_events()
    assert [(e.kind, e.severity) for e in events] == [("recorder.timeframe_unavailable", Severity.WARNING)] * 2
    assert {e.data["timeframe"] for e in events} == {"1m", "15m"}


def fill(side: Side, qty: str, price: str, fee: str, fee_asset: str, n: int) -> tuple[Order, Fill]:
    order = Order(f"c{n}", "binance", "BTCUSDT", side, OrderType.LIMIT, Decimal(qty), Decimal(price),
                  strategy="recorder")
    return order, Fill("binance", "BTCUSDT", f"t{n}", f"c{n}", f"v{n}", side, Decimal(qty), Decimal(price),
                       Decimal(fee), fee_asset, False, T0, "recorder")


def test_holdings_net_of_base_fees_and_dust_is_flat():
    s, ctx = Recorder(), ctx_for()
    s.on_order_update(*fill(Side.BUY, "0.01113", "42000", "0.00001113", "BTC", 1), ctx)
    assert s.holdings[MKT] == Decimal("0.01111887")
    assert s.position(ctx, MKT) == Decimal("0.01111")  # what a sell order can carry (step 0.00001)
    exit_ = s.close(ctx, MKT)
    assert (exit_.side, exit_.qty, exit_.purpose.value, exit_.strategy) == (Side.SELL, Decimal("0.01111"), "exit",
                                                                           "recorder")
    s.on_order_update(*fill(Side.SELL, "0.01111", "42000", "0.4666", "USDT", 2), ctx)
    assert s.holdings[MKT] == Decimal("0.00000887")
    assert s.position(ctx, MKT) == 0 and s.close(ctx, MKT) is None  # dust: the next entry is not blocked
    assert [(e.market, e.qty) for e in s.exposures()] == [(MKT, Decimal("0.00000887"))]


def test_group_is_whole_or_nothing():
    s, ctx = Recorder(), ctx_for()
    a = s.buy_usd(ctx, MKT, 500)
    b = s.limit(ctx, MKT, Side.SELL, Decimal("0.01"))
    legs = s.group(a, b)
    assert len(legs) == 2 and legs[0].meta["group"] == legs[1].meta["group"] == "recorder-1"
    assert legs[0].meta["legs"] == 2
    assert s.group(s.buy_usd(ctx, MKT, 500), s.limit(ctx, MKT, Side.SELL, Decimal("0.000001"))) == ()  # too small
    assert s.buy_usd(ctx, "binance:ETHUSDT", 500) is None  # no book


@pytest.fixture()
def ema_cls(monkeypatch):
    monkeypatch.chdir(ROOT)
    return resolve_class("examples/strategies/ema_cross.py:EmaCross")


def test_memory_and_holdings_survive_a_restart(ema_cls):
    """A strategy restored from its saved state (as JSON, like the store keeps it) decides exactly like one
    that never stopped."""
    params = ema_cls.Params(timeframe="1m", fast=3, slow=8, notional_usd=500)
    closes = [42000 + 300 * ((i // 12) % 2 and -1 or 1) * (i % 12) for i in range(80)]
    steady, ctx = ema_cls(params), ctx_for()
    first = ema_cls(params)
    out_steady, out_restarted = [], []
    for i, c in enumerate(closes):
        ctx.now_ms = T0 + (i + 1) * 60_000
        ctx.set_book(MKT, str(c), str(c + 0.01))
        bar = minute(i, float(c))
        if i == 40:
            saved = json.loads(json.dumps(first.state()))
            first = ema_cls(params)
            first.restore(saved)
        for s, out in ((steady, out_steady), (first, out_restarted)):
            intents = s.on_candle(MKT, bar, ctx)
            out.append([(x.side, x.qty, x.price) for x in intents])
            for n, x in enumerate(intents):  # filled at once, as IOC at the touch would be
                s.on_order_update(*fill(x.side, str(x.qty), str(x.price), "0", "USDT", i * 10 + n), ctx)
    assert any(out_steady[41:]), "the scenario must trade after the restart"
    assert out_restarted == out_steady
    assert first.state() == steady.state()
