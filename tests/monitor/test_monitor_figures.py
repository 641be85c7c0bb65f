"""§9 metric definitions as pure functions, checked against the reference's acceptance values."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from ate.monitor.figures import (
    DAY_MS,
    average_profit_bps,
    carry_delta,
    daily_pnl_series,
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
