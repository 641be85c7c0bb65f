"""Fingerprint of a backtest run, to prove an optimisation did not change results.

Runs the full engine (default config: every signal module, the config's strategies, risk, the matching
core) over the bench year (the real June 2025 1m month replayed N times, see bench_backtest.py) and prints
the SHA-256 of everything the run computed: the `--json` output, every decision, order, fill and equity
point. Run it before and after a change; `--expect HASH` exits 1 when the fingerprint differs.

    .venv/bin/python bench/backtest_fingerprint.py [--months 1] [--expect HASH]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from decimal import Decimal

from bench_backtest import DVOL, year_of_minutes

from ate.backtest.commands import dumps
from ate.backtest.data import BacktestData, MarketData, instrument_for
from ate.backtest.runner import ReplaySettings, run_backtest
from ate.config import parse_config
from ate.data.loaders import load_dvol


def fingerprint(months: int) -> tuple[str, dict[str, int]]:
    candles, note = year_of_minutes(months)
    key = "binance:BTCUSDT"
    data = BacktestData(key, {key: MarketData(key, instrument_for(key), candles)},
                        list(load_dvol(DVOL)) if DVOL.exists() else [], note=note)
    res = run_backtest(parse_config({"mode": "backtest", "run_id": "fingerprint"}, env={}), data,
                       settings=ReplaySettings(), capital=Decimal(10_000))
    payload = {"json": res.to_json(), "decisions": res.decisions, "orders": res.orders, "fills": res.fills,
               "equity": [(p.ts_ms, p.equity) for p in res.equity]}
    digest = hashlib.sha256(dumps(payload).encode()).hexdigest()
    return digest, {"bars": len(candles), "decisions": len(res.decisions), "orders": len(res.orders),
                    "fills": len(res.fills)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--months", type=int, default=1)
    ap.add_argument("--expect", default=None)
    args = ap.parse_args()
    digest, counts = fingerprint(args.months)
    print(f"{args.months} month(s): " + "  ".join(f"{k} {v:,}" for k, v in counts.items()))
    print(f"sha256 {digest}")
    if args.expect is not None and digest != args.expect:
        print(f"DIFFERS from the expected {args.expect}")
        sys.exit(1)


if __name__ == "__main__":
    main()
