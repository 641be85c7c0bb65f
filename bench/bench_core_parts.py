"""Where the full engine's time per bar goes: the bench month (or year) run with one part of the trading core
switched off at a time, CPU µs per bar, the lowest of `--repeat` runs (the machine may be shared).

Parts: the timer tick (equity, daily loss, the emergency module's equity), the account overrides on every
1m close (hedge snapshots, emergency and gamma), the strategies' book and candle hooks; then all three off,
then the replay floor (an idle driver: matching core and runner only). A part's cost is the full figure
minus the figure without it. Switching a part off changes what the run does, so only the times mean
anything here; `bench/backtest_fingerprint.py` is what checks results.

    .venv/bin/python bench/bench_core_parts.py [--months 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal

from bench_backtest import DVOL, year_of_minutes

from ate.backtest.data import BacktestData, MarketData, instrument_for
from ate.backtest.runner import Driver, ReplaySettings, run_backtest
from ate.config import parse_config
from ate.data.loaders import load_dvol
from ate.trading.core import TradingCore

KEY = "binance:BTCUSDT"


def _off(*args, **kwargs) -> None:
    return None


PARTS: dict[str, tuple[str, ...]] = {
    "full engine": (),
    "without the timer tick": ("on_timer",),
    "without the overrides": ("_overrides",),
    "without the strategies' hooks": ("_to_strategies",),
    "without all three": ("on_timer", "_overrides", "_to_strategies"),
}


def us_per_bar(candles, dvol, off: tuple[str, ...] = (), idle: bool = False) -> float:
    saved = {name: getattr(TradingCore, name) for name in off}
    for name in off:
        setattr(TradingCore, name, _off)
    try:
        data = BacktestData(KEY, {KEY: MarketData(KEY, instrument_for(KEY), candles)}, list(dvol))
        t0 = time.process_time()
        run_backtest(parse_config({"mode": "backtest"}, env={}), data, settings=ReplaySettings(),
                     capital=Decimal(10_000), driver_factory=(lambda cfg, world: Driver()) if idle else None)
        return (time.process_time() - t0) / len(candles) * 1e6
    finally:
        for name, fn in saved.items():
            setattr(TradingCore, name, fn)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--months", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    candles, note = year_of_minutes(args.months)
    dvol = load_dvol(DVOL) if DVOL.exists() else ()
    print(note)
    runs: dict[str, list[float]] = {label: [] for label in [*PARTS, "replay floor (idle driver)"]}
    for _ in range(args.repeat):  # interleaved, so a burst of load hits every variant alike
        for label, off in PARTS.items():
            runs[label].append(us_per_bar(candles, dvol, off))
        runs["replay floor (idle driver)"].append(us_per_bar(candles, dvol, idle=True))
    full = min(runs["full engine"])
    print(f"\n{'CPU µs per bar (lowest of ' + str(args.repeat) + ')':<40} {'µs/bar':>8} {'part costs':>11}")
    for label, values in runs.items():
        best = min(values)
        cost = f"{full - best:11.1f}" if label != "full engine" else ""
        print(f"{label:<40} {best:8.1f} {cost}")
    print(f"\nfull engine: {1e6 / full:,.0f} bars/s")


if __name__ == "__main__":
    main()
