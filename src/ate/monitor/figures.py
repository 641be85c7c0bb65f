"""Metric definitions of signals-and-strategies §9 as pure functions (floats out, None when undefined)."""

from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from itertools import accumulate

from ate.execution.portfolio import STABLES

DAY_MS = 86_400_000
SHARPE_MIN_DAYS = 7
SHARPE_MAX_DAYS = 30
HEDGE_MIN_SAMPLES = 48
WIN_EPSILON_USD = 0.01

# (ts_ms, equity, flows since the previous snapshot) as stored by `Store.equity_series`.
EquityPoint = tuple[int, Decimal | float, Decimal | float]


def _day_start(ts_ms: int) -> int:
    return ts_ms - ts_ms % DAY_MS


class _Curve:
    """An equity series indexed once for many flow-adjusted changes (bisect + prefix sums of flows)."""

    def __init__(self, series: Sequence[EquityPoint]) -> None:
        self.series = series
        self.times = [p[0] for p in series]
        self.cum_flows = list(accumulate((float(p[2]) for p in series), initial=0.0))

    def window(self, start_ms: int, end_ms: int) -> tuple[int, int] | None:
        """Indexes of the (base, end) snapshots of the equity at `start_ms` and at `end_ms`.

        The equity at an instant is the last snapshot at or before it; when no snapshot precedes `start_ms`
        (the engine started later) the first snapshot after it is the base.
        """
        times = self.times
        i_end = bisect_right(times, end_ms) - 1
        i_base = bisect_right(times, start_ms) - 1
        if i_base < 0:
            i_base = bisect_right(times, start_ms - 1)
            if i_base >= len(times) or times[i_base] > end_ms:
                return None
        if i_end < i_base:
            return None
        return i_base, i_end

    def change(self, start_ms: int, end_ms: int) -> tuple[float, float] | None:
        """(base equity, flow-adjusted change) from the equity at `start_ms` to the equity at `end_ms`.

        Flows recorded on snapshots after the base up to the end snapshot are deposits/withdrawals, not P&L.
        """
        window = self.window(start_ms, end_ms)
        if window is None:
            return None
        i_base, i_end = window
        flows = self.cum_flows[i_end + 1] - self.cum_flows[i_base + 1]
        base = float(self.series[i_base][1])
        return base, float(self.series[i_end][1]) - base - flows


def daily_pnl_usd(series: Sequence[EquityPoint], now_ms: int) -> float | None:
    """Equity now − equity at 00:00 UTC, flow-adjusted; None without any snapshot today."""
    change = _Curve(series).change(_day_start(now_ms), now_ms)
    return None if change is None else change[1]


def daily_window(series: Sequence[EquityPoint], now_ms: int) -> tuple[int, int] | None:
    """(base, end) snapshot times of today's P&L: the window `daily_pnl_usd` and `daily_pnl_split` measure."""
    window = _Curve(series).window(_day_start(now_ms), now_ms)
    return None if window is None else (series[window[0]][0], series[window[1]][0])


def daily_pnl_split(series: Sequence[EquityPoint], now_ms: int, fills: Iterable, funding: Iterable[dict],
                    marks: Mapping[str, Decimal]) -> dict | None:
    """Today's flow-adjusted P&L split into the strategies' P&L and the revaluation of carried holdings.

    Over the same window as `daily_pnl_usd` (base snapshot → last snapshot today), a strategy's P&L is what
    its fills in the window earned marked at the end (signed qty × (mark − fill price), for spot and perp
    alike), less their fees, plus its funding. Everything else the equity did is the revaluation of the
    holdings carried into the window: pre-funded inventory first of all (and positions opened on earlier
    days). `marks` ("venue:symbol" → price) must be the marks the end snapshot was valued at.
    None without a snapshot today; "unpriced" lists what could not be valued (the split is then None).
    """
    curve = _Curve(series)
    window = curve.window(_day_start(now_ms), now_ms)
    if window is None:
        return None
    i_base, i_end = window
    base_ms, end_ms = series[i_base][0], series[i_end][0]
    flows = Decimal(str(curve.cum_flows[i_end + 1] - curve.cum_flows[i_base + 1]))
    total = Decimal(str(series[i_end][1])) - Decimal(str(series[i_base][1])) - flows
    by_strategy: dict[str, Decimal] = {}
    unpriced: set[str] = set()
    for f in fills:
        if not base_ms < f.ts_ms <= end_ms:
            continue
        market = f"{f.venue}:{f.symbol}"
        mark = marks.get(market)
        if mark is None or mark <= 0:
            unpriced.add(market)
            continue
        pnl = f.side.sign * f.qty * (mark - f.price)
        if f.fee:
            if f.fee_asset.upper() in STABLES:
                pnl -= f.fee
            elif f.symbol.upper().startswith(f.fee_asset.upper()):  # fee taken in the base asset
                pnl -= f.fee * mark
            else:
                unpriced.add(f.fee_asset)
        name = f.strategy or "external"
        by_strategy[name] = by_strategy.get(name, Decimal(0)) + pnl
    for row in funding:
        if not base_ms < row["ts_ms"] <= end_ms:
            continue
        if str(row["asset"]).upper() not in STABLES:
            unpriced.add(str(row["asset"]))
            continue
        name = row["strategy"] or "external"
        by_strategy[name] = by_strategy.get(name, Decimal(0)) + Decimal(str(row["amount"]))
    out = {"since_ms": base_ms, "until_ms": end_ms, "total_usd": float(total), "unpriced": sorted(unpriced)}
    if unpriced:
        return out | {"strategy_usd": None, "by_strategy_usd": None, "inventory_revaluation_usd": None}
    strategy = sum(by_strategy.values(), Decimal(0))
    return out | {"strategy_usd": float(strategy), "by_strategy_usd": {k: float(v) for k, v in sorted(by_strategy.items())},
                  "inventory_revaluation_usd": float(total - strategy)}


def daily_pnl_series(series: Sequence[EquityPoint], now_ms: int, days: int = 30) -> list[tuple[int, float]]:
    """(UTC day start, flow-adjusted P&L) for the last `days` days with data, today included."""
    if not series:
        return []
    curve = _Curve(series)
    today = _day_start(now_ms)
    first = max(_day_start(series[0][0]), today - (days - 1) * DAY_MS)
    out = []
    for day in range(first, today + 1, DAY_MS):
        change = curve.change(day, min(day + DAY_MS, now_ms))
        if change is not None:
            out.append((day, change[1]))
    return out


def daily_returns(series: Sequence[EquityPoint], now_ms: int, days: int = SHARPE_MAX_DAYS) -> list[float]:
    """Flow-adjusted returns of the last ≤ `days` complete UTC days that have a base before them."""
    if not series:
        return []
    curve = _Curve(series)
    today = _day_start(now_ms)
    out = []
    for day in range(today - days * DAY_MS, today, DAY_MS):
        if series[0][0] > day:  # no equity known at this day's open
            continue
        change = curve.change(day, day + DAY_MS)
        if change is not None and change[0] > 0:
            out.append(change[1] / change[0])
    return out


def sharpe_ratio(returns: Sequence[float]) -> float | None:
    """mean/std (ddof 1) × √365, rf 0; None with fewer than 7 days or zero spread."""
    if len(returns) < SHARPE_MIN_DAYS:
        return None
    # statistics sums exactly, so identical returns give std 0 rather than rounding noise.
    std = statistics.stdev(returns)
    if std == 0 or not math.isfinite(std):
        return None
    return statistics.fmean(returns) / std * math.sqrt(365)


def sharpe_ratio_rolling(series: Sequence[EquityPoint], now_ms: int) -> float | None:
    return sharpe_ratio(daily_returns(series, now_ms))


def hedge_effectiveness(spot_increments: Sequence[float], hedged_increments: Sequence[float]) -> float | None:
    """1 − var(hedged)/var(spot) of hourly MTM increments (excl. funding, fees); None below 48 samples."""
    n = min(len(spot_increments), len(hedged_increments))
    if n < HEDGE_MIN_SAMPLES:
        return None
    spot = statistics.variance(spot_increments[-n:])
    if spot <= 0:
        return None
    return 1.0 - statistics.variance(hedged_increments[-n:]) / spot


def trade_outcome(pnl_usd: float) -> int:
    """+1 win, −1 loss, 0 for a trade within 1 cent of zero (counted as neither)."""
    if pnl_usd >= WIN_EPSILON_USD:
        return 1
    return -1 if pnl_usd <= -WIN_EPSILON_USD else 0


def win_rate(wins: int, losses: int) -> float | None:
    return None if wins + losses == 0 else 100.0 * wins / (wins + losses)


def win_rate_pct(pnls: Iterable[float]) -> float | None:
    """100·wins/(wins+losses) of closed trades' P&L."""
    outcomes = [trade_outcome(p) for p in pnls]
    return win_rate(outcomes.count(1), outcomes.count(-1))


def average_profit_bps(net_pnl_usd: float, buy_notional_usd: float) -> float | None:
    return None if buy_notional_usd <= 0 else net_pnl_usd / buy_notional_usd * 1e4


def carry_delta(books: Iterable[tuple[float, float, float, float]]) -> tuple[float | None, float | None]:
    """(current_delta, target_delta) over carry books given as (spot coins S, perp coins P, hedge ratio h, mark).

    Δ = S+P, T = (1−h)·S, d = Δ − T, H = h·|S|; both figures are normalised by Σ H·mark.
    """
    num_d = num_t = den = 0.0
    for s, p, h, mark in books:
        target = (1 - h) * s
        num_d += (s + p - target) * mark
        num_t += target * mark
        den += h * abs(s) * mark
    if den <= 0:
        return None, None
    return num_d / den, num_t / den


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100) of already sorted values."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
