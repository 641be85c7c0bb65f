"""Cost of the plug-in layer: the EMA cross example called directly vs behind the guard the engine puts
around every user strategy, per closed 1m candle (real June 2025 BTCUSDT), plus the 1h aggregation
`timeframes` adds. Prints µs per candle; no assertion.

    .venv/bin/python bench/bench_strategy_plugin.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ate.backtest.data import instrument_for
from ate.data.loaders import load_candles
from ate.strategies.base import SimpleContext
from ate.strategies.guard import Guarded
from ate.strategies.loader import resolve_class

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"
MKT = "binance:BTCUSDT"


def run(strategy, candles, ctx) -> float:
    t0 = time.perf_counter()
    for c in candles:
        ctx.now_ms = c.close_ms
        strategy.on_candle(MKT, c, ctx)
    return (time.perf_counter() - t0) / len(candles) * 1e6


def main() -> None:
    os.chdir(ROOT)
    cls = resolve_class("examples/strategies/ema_cross.py:EmaCross")
    candles = load_candles(DATA)
    ctx = SimpleContext(instruments={MKT: instrument_for(MKT)})
    ctx.set_book(MKT, "100000", "100000.01")
    print(f"{len(candles):,} real 1m candles ({DATA.name})")
    for tf in ("1m", "1h"):
        params = cls.Params(timeframe=tf, fast=12, slow=26, notional_usd=500)
        direct = min(run(cls(params), candles, ctx) for _ in range(3))
        guarded = min(run(Guarded(cls(params)), candles, ctx) for _ in range(3))
        print(f"timeframe {tf}: direct {direct:6.2f} µs/candle, guarded {guarded:6.2f} µs/candle "
              f"(guard +{guarded - direct:5.2f} µs)")


if __name__ == "__main__":
    main()
