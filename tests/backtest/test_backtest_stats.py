"""Statistics against values computed by hand."""

import math

import pytest

from ate.backtest.stats import (
    DAY_MS,
    EquityPoint,
    LedgerEntry,
    Trade,
    cagr,
    cash_flows,
    compute,
    daily_returns,
    drawdown,
    exposure,
    kpis,
    monthly_returns,
    sharpe,
    sortino,
    total_return,
    trade_stats,
)

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def _curve(values, step_ms=DAY_MS, flows=None):
    flows = flows or {}
    return [EquityPoint(T0 + i * step_ms, v, flows.get(i, 0.0)) for i, v in enumerate(values)]


def test_total_return_removes_deposits():
    # 100 → 110 (+10 %), deposit 100 → 220 (flat), → 242 (+10 %): 1.1 * 1.1 - 1 = 21 %
    pts = _curve([100, 110, 220, 242], flows={2: 110.0})
    assert total_return(pts) == pytest.approx(0.21, abs=1e-12)


def test_daily_returns_use_midnights_and_flows():
    # hourly points over two days: equity 100 at day 0 00:00, 105 at day 1 00:00 (with a +3 deposit
    # during day 0), 99.75 at day 2 00:00
    pts = [EquityPoint(T0, 100.0), EquityPoint(T0 + 3_600_000, 101.0, 3.0), EquityPoint(T0 + DAY_MS, 105.0),
           EquityPoint(T0 + DAY_MS + 60_000, 104.0), EquityPoint(T0 + 2 * DAY_MS, 99.75)]
    assert daily_returns(pts) == pytest.approx([0.02, -0.05])


def test_daily_returns_start_mid_day_and_carry_gaps():
    # first point mid-day: the first full day starts at the next midnight; a 2-day gap repeats equity
    pts = [EquityPoint(T0 + 43_200_000, 50.0), EquityPoint(T0 + DAY_MS, 100.0), EquityPoint(T0 + 4 * DAY_MS, 110.0)]
    # midnights: d1 = 100, d2 = 100, d3 = 100, d4 = 110
    assert daily_returns(pts) == pytest.approx([0.0, 0.0, 0.1])


def test_sharpe_alternating_returns_is_zero_and_sortino():
    daily = [0.01, -0.01] * 15  # §9 acceptance: alternating ±1 % for 30 days → Sharpe 0
    assert sharpe(daily) == pytest.approx(0.0, abs=1e-12)
    d = [0.01, 0.0, -0.005, 0.02, 0.0, -0.01, 0.005]  # sum 0.02, mean 0.02/7
    mean = 0.02 / 7
    std = math.sqrt(sum((x - mean) ** 2 for x in d) / 6)
    assert sharpe(d) == pytest.approx(mean / std * math.sqrt(365))
    # downside deviation over all 7 days: sqrt((0.005² + 0.01²) / 7)
    assert sortino(d) == pytest.approx(mean / math.sqrt((0.000025 + 0.0001) / 7) * math.sqrt(365))
    assert sharpe(d[:6]) is None and sortino(d[:6]) is None  # under a week
    assert sharpe([0.01] * 7) is None  # std 0
    assert sortino([0.01, 0.02] * 4) is None  # no losing day


def test_transfers_only_is_no_return():
    # deposits and withdrawals move equity but are not performance
    pts = _curve([1000, 1500, 1200, 1200], flows={1: 500.0, 2: -300.0})
    assert total_return(pts) == 0.0
    assert daily_returns(pts) == [0.0, 0.0, 0.0]
    assert drawdown(pts).max_drawdown == 0.0


def test_drawdown_depth_and_duration():
    # 100, 120 (peak d1), 90 (trough d2, -25 %), 100, 125 (recovered d4), 110
    pts = _curve([100, 120, 90, 100, 125, 110])
    dd = drawdown(pts)
    assert dd.max_drawdown == pytest.approx(0.25)
    assert (dd.peak_ms, dd.trough_ms, dd.recovery_ms) == (T0 + DAY_MS, T0 + 2 * DAY_MS, T0 + 4 * DAY_MS)
    assert dd.max_duration_ms == 3 * DAY_MS  # d1 → d4; the final dip lasts 1 day
    unrecovered = drawdown(_curve([100, 90, 95, 96, 97, 98]))
    assert unrecovered.recovery_ms is None and unrecovered.max_duration_ms == 5 * DAY_MS


def test_monthly_returns_and_cagr():
    # Feb 1 00:00 closes January; Mar 1 00:00 closes February
    pts = [EquityPoint(T0, 100.0), EquityPoint(T0 + 31 * DAY_MS, 110.0), EquityPoint(T0 + 45 * DAY_MS, 121.0),
           EquityPoint(T0 + 60 * DAY_MS, 121.0)]
    assert monthly_returns(pts) == pytest.approx({"2024-01": 0.1, "2024-02": 0.1})
    year = _curve([100, 150], step_ms=365 * DAY_MS)
    assert cagr(year) == pytest.approx(0.5)
    two_years = _curve([100, 144], step_ms=730 * DAY_MS)
    assert cagr(two_years) == pytest.approx(0.2)


def _trade(pnl, entry=0, exit_=1, strategy="directional", venue="binance"):
    return Trade(strategy, venue, "BTCUSDT", "BUY", entry, exit_, 100.0, 101.0, 1.0, pnl)


def test_trade_stats_win_rate_and_profit_factor():
    trades = [_trade(30), _trade(-10), _trade(20), _trade(0.005), _trade(-5)]
    s = trade_stats(trades)
    assert (s["trades"], s["wins"], s["losses"]) == (5, 2, 2)  # 0.005 is neither
    assert s["win_rate"] == pytest.approx(0.5)
    assert s["profit_factor"] == pytest.approx(50 / 15)
    assert s["net_pnl"] == pytest.approx(35.005)
    only_wins = trade_stats([_trade(1)])
    assert only_wins["profit_factor"] is None and only_wins["win_rate"] == 1.0
    assert trade_stats([])["win_rate"] is None


def test_exposure_merges_overlaps():
    trades = [_trade(1, 0, 30), _trade(1, 20, 40), _trade(1, 70, 80), _trade(1, 90, 200)]
    # [0,40] + [70,80] + [90,100] over [0,100]
    assert exposure(trades, 0, 100) == pytest.approx(0.6)


def test_cash_flows_split_funding():
    ledger = [LedgerEntry(0, "fee", 1.5, "binance"), LedgerEntry(1, "funding", 4.0, "binance"),
              LedgerEntry(2, "funding", -1.25, "binance"), LedgerEntry(3, "fee", 0.5, "backpack")]
    assert cash_flows(ledger) == {"fees_paid": 2.0, "funding_received": 4.0, "funding_paid": 1.25,
                                  "funding_net": 2.75}


def test_kpis_pass_fail_and_undefined():
    rows = {r["kpi"]: r for r in kpis({"monthly_return_equivalent": 0.06, "sharpe": 0.9, "max_drawdown": 0.1,
                                       "win_rate": None})}
    assert rows["monthly_return_equivalent"]["pass"] is True
    assert rows["sharpe"]["pass"] is False
    assert rows["max_drawdown"]["pass"] is True and (rows["max_drawdown"]["op"], rows["max_drawdown"]["threshold"]) == ("<", 0.2)
    assert rows["win_rate"]["pass"] is None and rows["win_rate"]["value"] is None


def test_compute_groups_by_strategy_and_venue():
    pts = _curve([100, 110, 99, 120])
    trades = [_trade(10, T0, T0 + DAY_MS, "directional", "binance"),
              _trade(-11, T0 + DAY_MS, T0 + 2 * DAY_MS, "carry", "binance"),
              _trade(21, T0 + 2 * DAY_MS, T0 + 3 * DAY_MS, "carry", "backpack")]
    ledger = [LedgerEntry(T0, "fee", 0.1, "binance", "directional"), LedgerEntry(T0, "funding", 2.0, "backpack", "carry")]
    s = compute(pts, trades, ledger)
    assert s["total_return"] == pytest.approx(0.2)
    assert s["max_drawdown"] == pytest.approx(0.1)
    assert s["days"] == 3
    assert s["by_strategy"]["carry"]["trades"] == 2
    assert s["by_strategy"]["carry"]["funding_received"] == 2.0
    assert s["by_venue"]["binance"]["net_pnl"] == pytest.approx(-1.0)
    assert s["by_venue"]["backpack"]["exposure"] == pytest.approx(1 / 3)
    assert s["exposure"] == pytest.approx(1.0)
    empty = compute([], [], [])
    assert empty["sharpe"] is None and empty["total_return"] is None and empty["exposure"] is None
