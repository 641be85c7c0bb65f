"""§9 metric definitions as pure functions, checked against the reference's acceptance values."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from ate.execution.portfolio import Portfolio
from ate.model import Fill, Instrument, MarketKind, Side
from ate.monitor.figures import (
    DAY_MS,
    average_profit_bps,
    carry_delta,
    daily_pnl_series,
    daily_pnl_split,
    daily_pnl_usd,
    daily_returns,
    hedge_effectiveness,
    percentile,
    sharpe_ratio,
    sharpe_ratio_rolling,
    win_rate_pct,
)

T0 = 1_772_323_200_000  # 2026-03-01 00:00 UTC


def daily_equity(returns, start=10_000.0, flows=None):
    """One snapshot per UTC midnight; flows[i] is deposited just before snapshot i."""
    flows = flows or {}
    series, e = [(T0, Decimal(str(start)), Decimal(0))], start
    for i, r in enumerate(returns, start=1):
        f = flows.get(i, 0.0)
        e = e * (1 + r) + f
        series.append((T0 + i * DAY_MS, Decimal(str(round(e, 10))), Decimal(str(f))))
    return series


def test_sharpe_alternating_returns_is_zero():
    series = daily_equity([0.01, -0.01] * 15)
    now = T0 + 30 * DAY_MS + 3_600_000
    rets = daily_returns(series, now)
    assert len(rets) == 30
    assert rets[0] == pytest.approx(0.01) and rets[1] == pytest.approx(-0.01)
    assert sharpe_ratio_rolling(series, now) == pytest.approx(0.0, abs=1e-9)


def test_sharpe_matches_numpy_and_is_flow_adjusted():
    rng = np.random.default_rng(3)
    rets = list(rng.normal(0.001, 0.01, 20))
    series = daily_equity(rets, flows={5: 2500.0, 12: -1000.0})
    now = T0 + 20 * DAY_MS + 1000
    got = daily_returns(series, now)
    assert got == pytest.approx(rets, rel=1e-9)  # deposits and withdrawals are not returns
    expected = np.mean(rets) / np.std(rets, ddof=1) * math.sqrt(365)
    assert sharpe_ratio_rolling(series, now) == pytest.approx(expected, rel=1e-9)


def test_sharpe_uses_at_most_30_complete_days_and_needs_7():
    rets = [0.002 * ((i % 5) - 2) + 0.001 for i in range(45)]
    series = daily_equity(rets)
    now = T0 + 45 * DAY_MS + 5
    assert daily_returns(series, now) == pytest.approx(rets[-30:], rel=1e-9)
    assert sharpe_ratio(rets[:6]) is None
    assert sharpe_ratio([0.01] * 10) is None  # std 0
    assert sharpe_ratio_rolling(daily_equity(rets[:6]), T0 + 6 * DAY_MS + 5) is None


def test_daily_pnl_transfers_only_day_is_zero():
    series = daily_equity([0.01, 0.0], flows={2: 5000.0})
    assert daily_pnl_usd(series, T0 + 2 * DAY_MS) == pytest.approx(0.0)
    series.append((T0 + 2 * DAY_MS + 3_600_000, Decimal("15100.5"), Decimal(0)))
    series.append((T0 + 2 * DAY_MS + 7_200_000, Decimal("14700.5"), Decimal("-500")))
    assert daily_pnl_usd(series, T0 + 2 * DAY_MS + 7_200_000) == pytest.approx(
        14700.5 - float(series[2][1]) + 500)


def test_daily_pnl_without_snapshot_before_midnight_uses_first_of_day():
    series = [(T0 + 3_600_000, Decimal("1000"), Decimal("1000")), (T0 + 7_200_000, Decimal("1010"), Decimal(0))]
    assert daily_pnl_usd(series, T0 + 7_200_000) == pytest.approx(10.0)
    assert daily_pnl_usd(series, T0 - 1) is None


def test_daily_pnl_series_per_day():
    series = daily_equity([0.01, -0.02, 0.005])
    out = daily_pnl_series(series, T0 + 3 * DAY_MS + 10)
    assert [d for d, _ in out] == [T0, T0 + DAY_MS, T0 + 2 * DAY_MS, T0 + 3 * DAY_MS]
    assert [p for _, p in out] == pytest.approx([100.0, -202.0, 49.49, 0.0])


def test_hedge_effectiveness_perfect_none_and_partial():
    rng = np.random.default_rng(1)
    spot = list(rng.normal(0, 100, 60))
    assert hedge_effectiveness(spot, [0.0] * 60) == 1.0
    assert hedge_effectiveness(spot, spot) == 0.0
    half = [x * 0.5 for x in spot]
    assert hedge_effectiveness(spot, half) == pytest.approx(0.75)
    assert hedge_effectiveness(spot[:47], [0.0] * 47) is None


def test_win_rate_excludes_sub_cent_trades():
    assert win_rate_pct([5.0, -2.0, 0.004, -0.009, 1.0]) == pytest.approx(100 * 2 / 3)
    assert win_rate_pct([0.001]) is None
    assert win_rate_pct([0.01, -0.01]) == 50.0


def test_average_profit_bps():
    assert average_profit_bps(5.52, 2400.0) == pytest.approx(23.0)
    assert average_profit_bps(1.0, 0.0) is None


def test_carry_delta_reference_case():
    # spot +1.000, perp −0.970, h 1: d = +0.030 coins, H = 1 → current 0.03, target 0
    current, target = carry_delta([(1.0, -0.97, 1.0, 60_000.0)])
    assert current == pytest.approx(0.03)
    assert target == 0.0
    current, target = carry_delta([(2.0, -1.0, 0.5, 100.0)])  # T = 1, Δ = 1, H = 1
    assert (current, target) == (pytest.approx(0.0), pytest.approx(1.0))
    assert carry_delta([]) == (None, None)


def test_percentile_matches_numpy():
    xs = sorted(np.random.default_rng(5).exponential(20, 501))
    for q in (0, 50, 99, 100):
        assert percentile(xs, q) == pytest.approx(np.percentile(xs, q))
    assert percentile([], 50) is None


# -- today's P&L split: strategies' P&L vs revaluation of the holdings carried into the day -------------------

SPOT_BN = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, Decimal("0.01"), Decimal("0.00001"))
SPOT_BP = Instrument("backpack", "BTC_USDC", "BTC", "USDC", MarketKind.SPOT, Decimal("0.01"), Decimal("0.00001"))
PERP_BN = Instrument("binance_usdm", "BTCUSDT", "BTC", "USDT", MarketKind.PERP, Decimal("0.1"), Decimal("0.001"))


def fill(inst, trade_id, side, qty, price, fee, fee_asset, ts_ms, strategy):
    return Fill(inst.venue, inst.symbol, trade_id, f"c-{trade_id}", f"v-{trade_id}", side, Decimal(qty),
                Decimal(price), Decimal(fee), fee_asset, False, ts_ms, strategy)


def prefunded() -> Portfolio:
    """1 BTC and 60,000 in stablecoins on each venue, BTC at 60,000: the arbitrage's pre-funded inventory."""
    p = Portfolio()
    for inst in (SPOT_BN, SPOT_BP, PERP_BN):
        p.add_instrument(inst)
    p.set_balances("binance", {"BTC": Decimal(1), "USDT": Decimal(60_000)})
    p.set_balances("backpack", {"BTC": Decimal(1), "USDC": Decimal(60_000)})
    p.set_balances("binance_usdm", {"USDT": Decimal(10_000)})
    for inst in (SPOT_BN, SPOT_BP, PERP_BN):
        p.mark(inst.key, Decimal(60_000))
    return p


def marks(p: Portfolio) -> dict:
    return {k: pos.mark_price for k, pos in p.positions.items()}


def test_split_separates_arbitrage_pnl_from_inventory_revaluation_with_the_real_portfolio():
    """BTC rises 1,000 over the day while an arbitrage buys 0.1 on one venue and sells it 30 higher on the other,
    and a directional perp long is opened: the 2 BTC of inventory are the revaluation (2,000 exactly), and the
    equity the portfolio computes is the sum of the two, to the last digit."""
    p = prefunded()
    base = T0 + 10 * DAY_MS
    series = [(base - 6 * 3_600_000, p.equity(), Decimal(0)), (base, p.equity(), Decimal(0))]
    fills = [fill(SPOT_BP, "a1", Side.BUY, "0.1", "60000", "0.6", "USDC", base + 3_600_000, "arbitrage"),
             fill(SPOT_BN, "a2", Side.SELL, "0.1", "60030", "0.6003", "USDT", base + 3_600_001, "arbitrage"),
             fill(PERP_BN, "d1", Side.BUY, "0.01", "60100", "0.3005", "USDT", base + 7_200_000, "directional")]
    for f in fills:
        p.apply_fill(f)
    for inst in (SPOT_BN, SPOT_BP, PERP_BN):
        p.mark(inst.key, Decimal(61_000))
    end = base + 12 * 3_600_000
    series.append((end, p.equity(), Decimal(0)))
    funding = [{"ts_ms": base + 8 * 3_600_000, "amount": Decimal("-0.06"), "asset": "USDT", "strategy": "directional"},
               {"ts_ms": base - 1, "amount": Decimal("99"), "asset": "USDT", "strategy": "directional"}]
    # A fill after the last snapshot is not in that equity yet, so it is not in the split either.
    late = fill(SPOT_BN, "a3", Side.SELL, "0.5", "1", "0", "USDT", end + 1, "arbitrage")
    split = daily_pnl_split(series, end + 60_000, [*fills, late], funding, marks(p))
    # Funding is booked by the ledger; the portfolio here saw none, so the equity lacks this -0.06.
    arbitrage = Decimal("0.1") * 1000 - Decimal("0.6") - Decimal("0.1") * (61_000 - 60_030) - Decimal("0.6003")
    directional = Decimal("0.01") * (61_000 - 60_100) - Decimal("0.3005") - Decimal("0.06")
    assert arbitrage == Decimal("1.7997") and directional == Decimal("8.6395")
    assert split["by_strategy_usd"] == {"arbitrage": float(arbitrage), "directional": float(directional)}
    assert split["total_usd"] == float(p.equity() - series[1][1])
    assert split["inventory_revaluation_usd"] == pytest.approx(2000.06, abs=1e-9)  # 2 BTC × 1,000 (+ the 0.06)
    assert split["strategy_usd"] + split["inventory_revaluation_usd"] == pytest.approx(split["total_usd"], abs=1e-9)
    assert (split["since_ms"], split["until_ms"], split["unpriced"]) == (base, end, [])


def test_split_values_base_asset_fees_at_the_mark_and_excludes_deposits():
    p = prefunded()
    base = T0
    series = [(base, p.equity(), Decimal(0))]
    f = fill(SPOT_BN, "b1", Side.BUY, "0.1", "60000", "0.0001", "BTC", base + 1000, "directional")
    p.apply_fill(f)
    p.set_balances("binance", {**p.balances["binance"], "USDT": p.balances["binance"]["USDT"] + 500})  # a deposit
    p.mark(SPOT_BN.key, Decimal(59_000))
    p.mark(SPOT_BP.key, Decimal(59_000))
    series.append((base + 2000, p.equity(), Decimal(500)))
    split = daily_pnl_split(series, base + 3000, [f], [], marks(p))
    strategy = Decimal("0.1") * (59_000 - 60_000) - Decimal("0.0001") * 59_000
    assert split["by_strategy_usd"] == {"directional": float(strategy)}
    assert split["inventory_revaluation_usd"] == pytest.approx(-2000.0, abs=1e-9)  # 2 BTC × -1,000
    assert split["total_usd"] == pytest.approx(float(strategy) - 2000.0, abs=1e-9)


def test_split_refuses_to_guess_an_unpriced_fee_or_market():
    p = prefunded()
    series = [(T0, p.equity(), Decimal(0)), (T0 + 2000, p.equity(), Decimal(0))]
    bnb = fill(SPOT_BN, "c1", Side.BUY, "0.1", "60000", "0.001", "BNB", T0 + 1000, "arbitrage")
    split = daily_pnl_split(series, T0 + 3000, [bnb], [], {SPOT_BN.key: Decimal(60_000)})
    assert split["unpriced"] == ["BNB"]
    assert (split["strategy_usd"], split["inventory_revaluation_usd"]) == (None, None)
    assert split["total_usd"] == 0.0
    nomark = fill(SPOT_BP, "c2", Side.BUY, "0.1", "60000", "0", "USDC", T0 + 1000, "arbitrage")
    assert daily_pnl_split(series, T0 + 3000, [nomark], [], {})["unpriced"] == ["backpack:BTC_USDC"]
    assert daily_pnl_split([], T0, [], [], {}) is None
    # A day with no snapshot yet: the same window as daily_pnl_usd (the last snapshot, on both ends).
    quiet = daily_pnl_split(series, T0 + DAY_MS, [], [], {})
    assert (quiet["total_usd"], quiet["strategy_usd"]) == (daily_pnl_usd(series, T0 + DAY_MS), 0.0)
    assert quiet["since_ms"] == quiet["until_ms"] == T0 + 2000
