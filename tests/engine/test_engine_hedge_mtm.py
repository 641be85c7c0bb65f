"""The engine's hourly carry MTM feed makes the monitor's hedge effectiveness real: a perfectly hedged carry
book scores 1.0 and an unhedged one 0.0 (signals-and-strategies.md §9)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from ate.config import parse_config
from ate.engine import Engine
from ate.model import Instrument, MarketKind
from ate.monitor.recorder import MetricsRecorder
from ate.strategies.factory import build_strategies
from ate.trading.core import TradingCore
from ate.trading.memory_state import MemoryState

D = Decimal
SPOT = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, D("0.01"), D("0.00001"))
PERP = Instrument("binance_usdm", "BTCUSDT", "BTC", "USDT", MarketKind.PERP, D("0.1"), D("0.001"))


def engine_with_book(tmp_path, perp_qty: Decimal) -> Engine:
    cfg = parse_config({"mode": "paper", "store": {"url": f"sqlite:///{tmp_path}/ate.db"}}, env={})
    engine = Engine(cfg)
    now = [0]
    engine.core = TradingCore(cfg, instruments=[SPOT, PERP], strategies=build_strategies(cfg),
                              clock=lambda: now[0], state=MemoryState())
    engine.recorder = MetricsRecorder(clock=lambda: now[0])
    carry = next(iter(engine.core.by_name["funding_carry"].slots.values()))  # the one pair
    carry.spot_qty, carry.perp_qty = D("1"), perp_qty
    return engine


@pytest.mark.parametrize(("perp_qty", "expected"), [(D("-1"), 1.0), (D("0"), 0.0)])
def test_hedge_effectiveness_from_hourly_carry_mtm(tmp_path, perp_qty, expected):
    engine = engine_with_book(tmp_path, perp_qty)
    for hour in range(60):
        price = D(60_000) + D(round(500 * math.sin(hour / 3), 2))
        engine.core.portfolio.mark("binance:BTCUSDT", price)
        engine.core.portfolio.mark("binance_usdm:BTCUSDT", price + D(5))  # a constant basis
        engine._carry_mtm()
    figures = engine.recorder.strategy_figures()["delta_neutral"]
    assert figures["hedge_effectiveness"] == pytest.approx(expected, abs=1e-12)
    engine.store.close()
