"""Backtest throughput: the full engine (all eight signal modules, the config's strategies — directional
among them — and the risk layer, with the matching core filling orders) over a year of 1m bars.

The repo ships one month of real 1m BTCUSDT (June 2025); a year is synthesised by replaying that month
twelve times, each copy shifted 30 days later (the price jumps at each seam). The output says so.
Also measured: a simple long/flat Supertrend strategy through the same runner and matching core, with the
signal engine idle — the workload Jesse's published ~183,000 candles/s figure refers to.

Figures are per CPU second (the machine may be shared) and peak RSS, each workload in its own process.
`bench/backtest_fingerprint.py` checks that an optimisation left the results byte-identical.

    .venv/bin/python bench/bench_backtest.py [--months 12] [--only full|simple|floor|signals]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "backtest"))  # the simple test strategy

from backtest_st_strategy import SupertrendLongFlat, permissive_config  # noqa: E402

from ate.backtest.data import BacktestData, MarketData, instrument_for, shift_candles  # noqa: E402
from ate.backtest.runner import Driver, ReplaySettings, run_backtest  # noqa: E402
from ate.config import parse_config  # noqa: E402
from ate.config.modules import ModulesConfig  # noqa: E402
from ate.data.loaders import load_candles, load_dvol  # noqa: E402
from ate.signals.engine import SignalEngine  # noqa: E402

MONTH_1M = ROOT / "data" / "binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"
DVOL = ROOT / "data" / "deribit_BTC_DVOL_1d.csv"
SHIFT_MS = 30 * 86_400_000
JESSE = 183_000  # candles/s, Jesse's published figure for a simple strategy
TARGET = 50_000


def year_of_minutes(months: int) -> tuple[list, str]:
    base = load_candles(MONTH_1M)
    candles = [c for k in range(months) for c in shift_candles(base, k * SHIFT_MS)]
    note = (f"synthesised: {MONTH_1M.name} ({len(base):,} real 1m bars) replayed {months}x, each copy shifted "
            f"+30 days → {len(candles):,} bars")
    return candles, note


def run(label: str, cfg, candles, note: str, strategies=None, dvol=(), driver_factory=None) -> float:
    key = "binance:BTCUSDT"
    data = BacktestData(key, {key: MarketData(key, instrument_for(key), candles)}, list(dvol), note=note)
    t0 = time.process_time()
    res = run_backtest(cfg, data, settings=ReplaySettings(), strategies=strategies, capital=Decimal(10_000),
                       driver_factory=driver_factory)
    dt = time.process_time() - t0
    rate = len(candles) / dt
    print(f"{label:<58} {len(candles):>9,} bars {dt:8.1f} CPU s {rate:>10,.0f} bars/s  "
          f"decisions {len(res.decisions):>6,}  orders {len(res.orders):>5,}  fills {len(res.fills):>5,}  "
          f"peak RSS {peak_rss_mb():,.0f} MB")
    return rate


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def signals_alone(candles) -> float:
    engine = SignalEngine(ModulesConfig(), dvol_history=load_dvol(DVOL) if DVOL.exists() else ())
    t0 = time.process_time()
    for c in candles:
        engine.on_candle(c)
        engine.overrides(c.close_ms)  # emergency and gamma run on every 1m close, as in the core
    dt = time.process_time() - t0
    rate = len(candles) / dt
    print(f"{'signal engine alone (on_candle + overrides per bar)':<58} {len(candles):>9,} bars {dt:8.1f} CPU s "
          f"{rate:>10,.0f} bars/s  peak RSS {peak_rss_mb():,.0f} MB")
    return rate


WORKLOADS = ("full", "simple", "floor", "signals")


def measure(workload: str, months: int) -> float:
    """One workload over the bench year, in this process; prints its line and returns its rate."""
    candles, note = year_of_minutes(months)
    if workload == "full":
        return run("full engine (8 modules + strategies + risk + matching)", parse_config({"mode": "backtest"}, env={}),
                   candles, note, dvol=load_dvol(DVOL) if DVOL.exists() else ())
    if workload == "simple":
        return run("simple Supertrend long/flat (runner + risk + matching)", permissive_config(), candles, note,
                   strategies=[SupertrendLongFlat()])
    if workload == "floor":
        return run("replay floor: matching core + runner, no engine (idle driver)", permissive_config(), candles,
                   note, driver_factory=lambda cfg, world: Driver())
    return signals_alone(candles)


def in_child(workload: str, months: int) -> float:
    """`measure` in a fresh process, so the peak RSS printed is that workload's own (a process keeps the
    memory an earlier run freed but fragmented); the rate comes back on a pipe of its own."""
    read, write = os.pipe()
    try:
        subprocess.run([sys.executable, __file__, "--months", str(months), "--only", workload, "--rate-fd",
                        str(write)], check=True, pass_fds=(write,))
    finally:
        os.close(write)
    with os.fdopen(read) as pipe:
        return float(pipe.read())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--only", choices=WORKLOADS, help="run one workload in this process")
    ap.add_argument("--rate-fd", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:
        rate = measure(args.only, args.months)
        if args.rate_fd is not None:
            with os.fdopen(args.rate_fd, "w") as out:
                out.write(repr(rate))
        return
    print(year_of_minutes(args.months)[1])
    print("each workload in its own process, one core; CPU time (the machine is shared) includes building the "
          "replay path, stats and round trips; peak RSS is that process's high-water mark (the year's candles "
          "included)\n")
    sys.stdout.flush()
    full, simple, floor, signals = (in_child(w, args.months) for w in WORKLOADS)
    print()
    print(f"signal engine alone (8 modules + combiner, no core): {signals:>10,.0f} bars/s")
    print(f"replay floor:    {floor:>10,.0f} bars/s   (4 book updates + trade print + candle close per bar)")
    print(f"full engine:     {full:>10,.0f} bars/s   target >= {TARGET:,}   "
          f"{'MET' if full >= TARGET else 'NOT MET'}")
    print(f"simple strategy: {simple:>10,.0f} bars/s   Jesse (published, simple strategy) ~{JESSE:,} candles/s")


if __name__ == "__main__":
    main()
