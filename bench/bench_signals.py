"""Throughput of SignalEngine (all eight modules + combiner) over one year of 1m candles.

A year of real 1m data does not ship, so it is synthesised: the real Binance spot BTCUSDT 1m days
2025-06-02 .. 2025-06-30 (29 whole days) are replayed back to back, each replay shifted by 29 days
and price-scaled so its first open equals the previous replay's last close (returns, ranges and
volumes are the real ones; no seam jump). The engine is first warmed with the real 1h history
(2,000 hours before the start), then timed over 525,600 1m candles; GARCH refits (every 24 h of
candle time, `arch` MLE) happen inside the timed loop. It is timed twice: candles only, and with the
emergency/gamma overrides also evaluated on every 1m close as the live engine does. The SHA-256 of every
decision (all module outputs, GARCH parameters included) is printed so an optimisation can show it changed
nothing.

`--backtest-year` instead times bench_backtest.py's "signal engine alone" workload (its year: the June 2025 1m
month replayed 12x, no warm-up, overrides on every 1m close) `--runs` times and prints the median, without the
full engine runs that precede it there.

    .venv/bin/python bench/bench_signals.py [--backtest-year [--runs 3]]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path

from ate.config.modules import ModulesConfig
from ate.data.candles import Candle
from ate.data.loaders import load_candles, load_dvol
from ate.signals.engine import SignalEngine
from ate.signals.garch import fit_garch

DATA = Path(__file__).resolve().parent.parent / "data"
DAY = 86_400_000
START = 1748822400000  # 2025-06-02 00:00 UTC
DAYS_PER_REPLAY = 29
MINUTES = 365 * 1440


def synthetic_year() -> list[Candle]:
    month = load_candles(DATA / "binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz",
                         start_ms=START, end_ms=START + DAYS_PER_REPLAY * DAY)
    out: list[Candle] = []
    scale, k = 1.0, 0
    while len(out) < MINUTES:
        shift = k * DAYS_PER_REPLAY * DAY
        if out:
            scale = out[-1].close / month[0].open
        for c in month:
            out.append(Candle(c.open_ms + shift, c.open * scale, c.high * scale, c.low * scale, c.close * scale,
                              c.volume))
            if len(out) == MINUTES:
                break
        k += 1
    return out


class TimedFitter:
    """`fit_garch` (the engine's fitter) with its CPU time recorded, to show how much of the run the refits take."""

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0  # CPU seconds

    def __call__(self, returns):
        t0 = time.process_time()
        try:
            return fit_garch(returns)
        finally:
            self.calls += 1
            self.seconds += time.process_time() - t0


def run(year: list[Candle], hours: list[Candle], with_overrides: bool) -> tuple[float, float, list, TimedFitter]:
    fitter = TimedFitter()
    engine = SignalEngine(ModulesConfig(), dvol_history=load_dvol(DATA / "deribit_BTC_DVOL_1d.csv"),
                          garch_fitter=fitter)
    engine.update_equity(10_000.0, START)
    for c in hours:
        engine.on_candle(c)
    fitter.calls, fitter.seconds = 0, 0.0
    decisions = []
    keep = decisions.append
    on_candle = engine.on_candle
    overrides = engine.overrides
    t0, c0 = time.perf_counter(), time.process_time()
    if with_overrides:
        for c in year:
            if (d := on_candle(c)) is not None:
                keep(d)
            overrides(c.open_ms + 60_000)
    else:
        for c in year:
            if (d := on_candle(c)) is not None:
                keep(d)
    return time.perf_counter() - t0, time.process_time() - c0, decisions, fitter


def backtest_year(runs: int) -> None:
    import arch.univariate  # noqa: F401  (imported before timing, as after bench_backtest's full engine runs)
    from bench_backtest import signals_alone, year_of_minutes

    candles, note = year_of_minutes(12)
    print(note)
    rates = [signals_alone(candles) for _ in range(runs)]
    print(f"signal engine alone, median of {runs}: {statistics.median(rates):,.0f} 1m bars per CPU second")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backtest-year", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if args.backtest_year:
        backtest_year(args.runs)
        return
    hours = load_candles(DATA / "binance_spot_BTCUSDT_1h.csv.gz", start_ms=START - 2000 * 3_600_000, end_ms=START)
    year = synthetic_year()
    print("1m candles: one year synthesised by replaying real Binance spot BTCUSDT 1m 2025-06-02..06-30 "
          "(29 days, time-shifted, price-scaled at the seams); warm-up: 2,000 real 1h bars (not timed)")
    for with_overrides, label in ((False, "on_candle only (decision modules at each 1h close, flash detector "
                                          "and aggregation every 1m)"),
                                  (True, "on_candle + overrides() (emergency and gamma evaluated every 1m)")):
        wall, cpu, decisions, fitter = run(year, hours, with_overrides)
        rest = cpu - fitter.seconds
        print(f"\n{label}")
        digest = hashlib.sha256(json.dumps([d.to_dict() for d in decisions]).encode()).hexdigest()
        print(f"  candles {len(year):,}  decisions {len(decisions):,}  GARCH refits {fitter.calls} "
              f"({fitter.seconds:.2f} CPU s, {1000 * fitter.seconds / max(fitter.calls, 1):.1f} ms each)  "
              f"wall {wall:.2f} s, CPU {cpu:.2f} s")
        print(f"  throughput {len(year) / cpu:,.0f} 1m bars per CPU second (one core), GARCH refits included; "
              f"{len(year) / wall:,.0f} per wall second; {len(year) / rest:,.0f} per CPU second without the refits")
        print(f"  decisions sha256 {digest} (every module output; must not change with an optimisation)")


if __name__ == "__main__":
    main()
