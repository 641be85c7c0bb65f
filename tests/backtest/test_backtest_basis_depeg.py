"""The March 2023 USDC de-peg replayed through the engine (issue 19): Binance.US BTC/USDT and BTC/USDC as
the two venues, the basis implied from Kraken BTC/USDC.

Invariants: with the guard, no arbitrage entry while the basis (rebuilt from the raw files) is outside the
band; the veto is a CRITICAL event the alert notifier sends; the strategy's realised P&L equals an
independent computation from the venue's fills at the real basis; equity in USD values USDC at that basis.
Without the band the same replay does enter outside it (so the invariant can fail). CI replays 12 hours
around the break of the peg; ATE_DEPEG_FULL=1 replays 2023-03-09 → 2023-03-14.
"""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

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
from ate.model import Severity
from ate.monitor.alerts import Notifier

pytestmark = pytest.mark.skipif(not all(p.exists() for p in FILES.values()), reason="de-peg data slices absent")
HOUR = 3_600_000
FULL = os.environ.get("ATE_DEPEG_FULL") == "1"
WINDOW = (START, END) if FULL else (START + 44 * HOUR, START + 56 * HOUR)  # 03-10 20:00 → 03-11 08:00


def entries(res):
    return [f for f in res.fills if f["strategy"] == "arbitrage" and f["purpose"] == "entry"]


def test_guard_vetoes_every_entry_outside_the_band_with_an_alert():
    events = []
    res, arb = run_depeg(depeg_config(), *WINDOW, on_event=events.append)
    basis = RealBasis(start_ms=WINDOW[0], end_ms=WINDOW[1])
    assert all(not basis.outside(f["ts_ms"], 30.0) for f in entries(res))
    vetoes = [e for e in events if e.kind == "arbitrage.basis_veto"]
    assert vetoes and all(e.severity is Severity.CRITICAL for e in vetoes)
    assert any("outside ±30 bps" in e.message for e in vetoes)
    assert Notifier([object()]).event(vetoes[0])  # a CRITICAL event is queued as an operator alert
    m = arb.metrics()
    assert m["skipped"]["basis"] > 100 and m["basis"]["veto"] is not None


def test_without_the_band_it_trades_outside_it_and_pnl_matches_the_real_basis():
    res, arb = run_depeg(depeg_config(band_bps=None), *WINDOW)
    basis = RealBasis(start_ms=WINDOW[0], end_ms=WINDOW[1])
    outside = [f for f in entries(res) if basis.outside(f["ts_ms"], 30.0)]
    assert len(outside) > 20  # what the guard prevents: entries while USDC is off its peg
    pnl, btc = independent_pnl(res.fills, basis)
    m = arb.metrics()
    assert btc == 0  # every attempt matched: no residual to value
    assert m["trades_executed"] == len(entries(res)) // 2
    # the only difference: a mid on the tick grid vs the recorded price (≤ 1e-6 relative per fill)
    assert float(pnl) == pytest.approx(m["realised_pnl_usd"], abs=1e-4 * m["trades_executed"])
    # equity in USD: the venue's wallets, USDC at the real basis at the end, BTC at the last BTCUSDT price
    last_btc = Decimal(repr(basis.usdt.rows[-1][2]))
    independent_equity = usd_value(wallets_after(res.fills), basis.at(res.end_ms), last_btc)
    assert float(res.final_equity) == pytest.approx(float(independent_equity), abs=0.01)
    assert res.final_equity < usd_value(wallets_after(res.fills), Decimal(1), last_btc)  # USDC is not worth 1


def test_fixed_rate_of_one_books_a_profit_that_is_a_loss_at_the_real_basis():
    """The pre-guard engine (conversion at 1): the strategy's own P&L and the real one disagree in sign."""
    res, arb = run_depeg(depeg_config(band_bps=None, fixed_rate=1.0), *WINDOW)
    pnl, _ = independent_pnl(res.fills, RealBasis(start_ms=WINDOW[0], end_ms=WINDOW[1]))
    assert arb.metrics()["realised_pnl_usd"] > 0 > pnl
