"""The basis guard over the March 2023 USDC de-peg: what the arbitrage does with and without it.

Replays 2023-03-09 → 2023-03-14 (Binance.US BTC/USDT and BTC/USDC 1m as the two venues, the basis implied
from Kraken BTC/USDC; see ate.backtest.depeg) three times:

- guard: the live basis, band ±30 bps, resume after 30 min inside it (the shipped behaviour);
- no band: the live basis, band disabled (staleness still vetoes);
- fixed 1: the issue-19 engine, USDC converted at a fixed 1 (what `conversion_rate: 1.0` still does).

For each: round trips, entries while the basis was outside ±30 bps, the P&L the strategy reports, the P&L
recomputed independently from the fills at the real basis, USDC bought net, the USD equity at the end (real
basis) and the same equity had USDC stayed at the window's lowest basis (a stress figure, not history:
USDC re-pegged on 03-13).

    .venv/bin/python bench/bench_basis_depeg.py
"""

from __future__ import annotations

import time
from decimal import Decimal

from ate.backtest.depeg import (
    END,
    FILES,
    START,
    RealBasis,
    depeg_config,
    independent_pnl,
    run_depeg,
    usd_value,
    wallets_after,
)

SCENARIOS = (("guard", {}), ("no band", {"band_bps": None}), ("fixed 1", {"band_bps": None, "fixed_rate": 1.0}))


def main() -> None:
    missing = [str(p) for p in FILES.values() if not p.exists()]
    if missing:
        raise SystemExit(f"data files absent: {', '.join(missing)}")
    basis = RealBasis(end_ms=END)
    closes = range(START + 60_000, END + 1, 60_000)
    trough = min(basis.at(t) for t in closes if basis.usdc.last_close_time(t) is not None)
    last_btc = Decimal(repr(basis.usdt.rows[-1][2]))
    start_equity = usd_value(wallets_after([]), basis.at(START + 60_000), Decimal(repr(basis.usdt.rows[0][1])))
    print(f"2023-03-09 → 2023-03-14, basis USDT per USDC: {basis.at(START + 60_000):.4f} at the start, "
          f"{trough:.4f} at the trough, {basis.at(END):.4f} at the end; start equity {start_equity:,.2f} USD")
    header = (f"{'scenario':<9} {'trips':>6} {'outside':>8} {'reported':>10} {'real':>10} {'USDC net':>10} "
              f"{'equity':>11} {'if no re-peg':>13} {'run s':>6}")
    print(header)
    for name, kw in SCENARIOS:
        t0 = time.perf_counter()
        res, arb = run_depeg(depeg_config(**kw))
        elapsed = time.perf_counter() - t0
        entries = [f for f in res.fills if f["strategy"] == "arbitrage" and f["purpose"] == "entry"]
        outside = sum(1 for f in entries if basis.outside(f["ts_ms"], 30.0)) // 2
        real, _ = independent_pnl(res.fills, basis)
        wallets = wallets_after(res.fills)
        usdc_net = sum((a for (_, asset), a in wallets.items() if asset == "USDC"), Decimal(0)) - Decimal(10_000)
        equity = usd_value(wallets, basis.at(END), last_btc)
        stressed = usd_value(wallets, trough, last_btc)
        m = arb.metrics()
        print(f"{name:<9} {m['trades_executed']:>6} {outside:>8} {m['realised_pnl_usd']:>10.2f} {float(real):>10.2f} "
              f"{float(usdc_net):>10.2f} {float(equity):>11.2f} {float(stressed):>13.2f} {elapsed:>6.1f}")
    print("reported: the strategy's realised P&L (USDT; fixed 1 converts at 1); real: the same fills, USDC at the "
          "real basis at each fill; equity: wallets in USD at the end; if no re-peg: USDC at the trough basis")


if __name__ == "__main__":
    main()
