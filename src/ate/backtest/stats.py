"""Performance statistics: pure functions over an equity curve with flows, a trade list and ledger entries.

Conventions (signals-and-strategies.md §9; `CONVENTIONS` says them in words for the outputs): returns are time-weighted and flow-adjusted (a deposit is
not a gain); daily returns are taken between UTC midnights; Sharpe and Sortino use daily returns,
risk-free rate 0, × √365; a win or loss is a closed trade with |net P&L| ≥ 0.01 USD. Anything that is
undefined for the run (too little data, division by zero) is ``None``, never a made-up number.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import overload

from ate.backtest.series import PairSeries

DAY_MS = 86_400_000
YEAR_DAYS = 365.0
MONTH_DAYS = 365.25 / 12
MIN_PNL = 0.01  # |P&L| below this is neither a win nor a loss
MIN_DAYS = 7  # Sharpe and Sortino need a week of daily returns (§9 sharpe_ratio_rolling)

# The operator plan's financial KPIs: (statistic, comparison, threshold). The plan's "monthly return" is
# tested as the monthly equivalent of the run's total return (calendar months are in `monthly_returns`).
KPI_THRESHOLDS: tuple[tuple[str, str, float], ...] = (
    ("monthly_return_equivalent", ">", 0.05),
    ("sharpe", ">", 1.0),
    ("max_drawdown", "<", 0.20),
    ("win_rate", ">", 0.60),
)


@dataclass(frozen=True, slots=True)
class EquityPoint:
    ts_ms: int
    equity: float
    flow: float = 0.0  # external deposit (+) or withdrawal (-) since the previous point, included in equity


class EquityCurve(Sequence[EquityPoint]):
    """Equity points held as typed columns (24 bytes a point instead of ~110 for a list of points); a
    point is built when one is read. Slices are curves too."""

    __slots__ = ("ts", "equity", "flow")

    def __init__(self, points: Iterable[EquityPoint] = ()) -> None:
        self.ts = array("q")
        self.equity = array("d")
        self.flow = array("d")
        for p in points:
            self.append(p)

    def append(self, p: EquityPoint) -> None:
        self.add(p.ts_ms, p.equity, p.flow)

    def add(self, ts_ms: int, equity: float, flow: float = 0.0) -> None:
        self.ts.append(ts_ms)
        self.equity.append(equity)
        self.flow.append(flow)

    def insert(self, i: int, p: EquityPoint) -> None:
        self.ts.insert(i, p.ts_ms)
        self.equity.insert(i, p.equity)
        self.flow.insert(i, p.flow)

    def __len__(self) -> int:
        return len(self.ts)

    @overload
    def __getitem__(self, i: int) -> EquityPoint: ...

    @overload
    def __getitem__(self, i: slice) -> EquityCurve: ...

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        if isinstance(i, slice):
            out = EquityCurve()
            out.ts, out.equity, out.flow = self.ts[i], self.equity[i], self.flow[i]
            return out
        return EquityPoint(self.ts[i], self.equity[i], self.flow[i])

    def __iter__(self) -> Iterator[EquityPoint]:
        for t, e, f in zip(self.ts, self.equity, self.flow, strict=True):
            yield EquityPoint(t, e, f)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Trade:
    """A closed round trip. ``pnl`` is net of fees and funding, in quote currency."""

    strategy: str
    venue: str
    symbol: str
    side: str  # direction of the opening fill: BUY (long) or SELL (short)
    entry_ms: int
    exit_ms: int
    entry_price: float
    exit_price: float
    qty: float
    pnl: float
    fees: float = 0.0
    funding: float = 0.0
    legs: int = 1  # markets in this strategy trade (a carry pair or a hedged entry: 2)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    ts_ms: int
    kind: str  # "fee" (amount paid, positive) | "funding" (received, negative when paid)
    amount: float
    venue: str
    strategy: str = ""


def _month(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m")


def period_returns(points: Sequence[EquityPoint]) -> PairSeries:
    """(ts, return since the previous point), the flow of the point removed from its gain."""
    out = PairSeries()
    ts, rs = out.ts, out.values
    if isinstance(points, EquityCurve):  # the columns themselves: no point objects for a long curve
        rows: Iterable[tuple[int, float, float]] = zip(points.ts, points.equity, points.flow, strict=True)
    else:
        rows = ((p.ts_ms, p.equity, p.flow) for p in points)
    prev = None
    for t, e, f in rows:
        if prev is not None:
            ts.append(t)
            rs.append(math.nan if prev <= 0 else (e - f) / prev - 1.0)
        prev = e
    return out


def _compound(returns: Iterable[float]) -> float:
    g = 1.0
    for r in returns:
        g *= 1.0 + r
    return g - 1.0


def total_return(points: Sequence[EquityPoint], returns: Sequence[tuple[int, float]] | None = None) -> float | None:
    """`returns`: ``period_returns(points)`` if already computed (a full-resolution curve is long)."""
    if len(points) < 2:
        return None
    r = _compound(x for _, x in (period_returns(points) if returns is None else returns))
    return None if math.isnan(r) else r


def monthly_returns(points: Sequence[EquityPoint],
                    returns: Sequence[tuple[int, float]] | None = None) -> dict[str, float]:
    """Compounded return of each calendar month (UTC) the curve touches, by "YYYY-MM"."""
    growth: dict[str, float] = {}  # compounded as it goes (as `_compound` does): no list of a year's returns
    unknown: set[str] = set()  # months with a return that is not a number
    day_month: dict[int, str] = {}  # a month per UTC day, not a strftime per point
    for ts, r in (period_returns(points) if returns is None else returns):
        # a return ending exactly at midnight on the 1st belongs to the month before
        day = (ts - 1) // DAY_MS
        month = day_month.get(day)
        if month is None:
            month = day_month[day] = _month(ts - 1)
        if math.isnan(r):
            unknown.add(month)
        growth[month] = growth.get(month, 1.0) * (1.0 + r)
    return {m: g - 1.0 for m, g in sorted(growth.items()) if m not in unknown}


def daily_returns(points: Sequence[EquityPoint]) -> list[float]:
    """Flow-adjusted returns between consecutive UTC midnights (the last point at or before each one).

    Only complete days count: the first value is the day after the first midnight the curve covers."""
    if len(points) < 2:
        return []
    midnight = -(-points[0].ts_ms // DAY_MS) * DAY_MS
    marks: list[tuple[float, float]] = []  # (equity at a midnight, flows since the previous midnight)
    flows = 0.0
    if isinstance(points, EquityCurve):  # the columns themselves: no point objects for a long curve
        rows: Iterable[tuple[int, float, float]] = zip(points.ts, points.equity, points.flow, strict=True)
    else:
        rows = ((p.ts_ms, p.equity, p.flow) for p in points)
    prev: tuple[int, float, float] | None = None
    for row in rows:
        while row[0] > midnight:
            if prev is not None:
                marks.append((prev[1], flows))
                flows = 0.0
            midnight += DAY_MS
        if prev is not None:
            flows += row[2]
        prev = row
    if prev is not None and prev[0] == midnight:
        marks.append((prev[1], flows))
    out = []
    for (e0, _), (e1, f1) in zip(marks, marks[1:], strict=False):
        out.append((e1 - f1) / e0 - 1.0 if e0 > 0 else math.nan)
    return out


def cagr(points: Sequence[EquityPoint], returns: Sequence[tuple[int, float]] | None = None) -> float | None:
    tr = total_return(points, returns)
    if tr is None or tr <= -1:
        return None
    days = (points[-1].ts_ms - points[0].ts_ms) / DAY_MS
    return (1.0 + tr) ** (YEAR_DAYS / days) - 1.0 if days > 0 else None


def monthly_return_equivalent(points: Sequence[EquityPoint],
                              returns: Sequence[tuple[int, float]] | None = None) -> float | None:
    """The constant monthly return that compounds to the run's total return over its span."""
    tr = total_return(points, returns)
    if tr is None or tr <= -1:
        return None
    days = (points[-1].ts_ms - points[0].ts_ms) / DAY_MS
    return (1.0 + tr) ** (MONTH_DAYS / days) - 1.0 if days > 0 else None


def _mean_std(xs: Sequence[float]) -> tuple[float, float] | None:
    n = len(xs)
    if n < 2:
        return None
    mean = sum(xs) / n
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))


def annualized_volatility(daily: Sequence[float]) -> float | None:
    ms = _mean_std(daily)
    return None if ms is None else ms[1] * math.sqrt(YEAR_DAYS)


def sharpe(daily: Sequence[float]) -> float | None:
    if len(daily) < MIN_DAYS:
        return None
    ms = _mean_std(daily)
    if ms is None or ms[1] == 0:
        return None
    return ms[0] / ms[1] * math.sqrt(YEAR_DAYS)


def sortino(daily: Sequence[float]) -> float | None:
    """Mean over downside deviation √(mean(min(r, 0)²)) over all days, × √365; None without a losing day."""
    if len(daily) < MIN_DAYS:
        return None
    dd = math.sqrt(sum(min(r, 0.0) ** 2 for r in daily) / len(daily))
    if dd == 0:
        return None
    return sum(daily) / len(daily) / dd * math.sqrt(YEAR_DAYS)


@dataclass(frozen=True, slots=True)
class Drawdown:
    max_drawdown: float  # fraction of the peak, ≥ 0
    peak_ms: int | None
    trough_ms: int | None
    recovery_ms: int | None  # None: not recovered by the end
    max_duration_ms: int  # longest time spent below a previous peak (to recovery, or to the end)


def drawdown(points: Sequence[EquityPoint], returns: Sequence[tuple[int, float]] | None = None) -> Drawdown | None:
    """Drawdowns of the flow-adjusted equity index (deposits do not end a drawdown)."""
    if len(points) < 2:
        return None
    idx = 1.0
    peak, peak_ms = 1.0, points[0].ts_ms
    best = (0.0, None, None)
    under_since: int | None = None
    longest = 0
    recovery: dict[int, int] = {}
    for ts, r in (period_returns(points) if returns is None else returns):
        if math.isnan(r):
            return None
        idx *= 1.0 + r
        if idx >= peak:
            if under_since is not None:
                longest = max(longest, ts - under_since)
                recovery.setdefault(peak_ms, ts)
                under_since = None
            peak, peak_ms = idx, ts
            continue
        if under_since is None:
            under_since = peak_ms
        dd = 1.0 - idx / peak
        if dd > best[0]:
            best = (dd, peak_ms, ts)
    if under_since is not None:
        longest = max(longest, points[-1].ts_ms - under_since)
    dd, p_ms, t_ms = best
    return Drawdown(dd, p_ms, t_ms, recovery.get(p_ms) if p_ms is not None else None, longest)


def drawdown_series(points: Sequence[EquityPoint]) -> list[float]:
    """Drawdown (fraction ≥ 0) at every point, for plotting."""
    out = [0.0]
    idx = peak = 1.0
    for _, r in period_returns(points):
        idx *= 1.0 + (0.0 if math.isnan(r) else r)
        peak = max(peak, idx)
        out.append(1.0 - idx / peak)
    return out[: len(points)]


def trade_stats(trades: Sequence[Trade]) -> dict[str, float | int | None]:
    wins = [t.pnl for t in trades if t.pnl >= MIN_PNL]
    losses = [t.pnl for t in trades if t.pnl <= -MIN_PNL]
    decided = len(wins) + len(losses)
    gross_loss = -sum(losses)
    return {
        "trades": len(trades),
        "wins": len(wins),
        "losses": len(losses),
        "win_rate": len(wins) / decided if decided else None,
        "profit_factor": sum(wins) / gross_loss if gross_loss > 0 else None,
        "net_pnl": sum(t.pnl for t in trades),
        "avg_trade": sum(t.pnl for t in trades) / len(trades) if trades else None,
    }


def exposure(trades: Sequence[Trade], start_ms: int, end_ms: int) -> float | None:
    """Share of [start, end] with at least one position open (overlapping trades counted once)."""
    if end_ms <= start_ms:
        return None
    covered = 0
    cur_s = cur_e = None
    for t in sorted(trades, key=lambda t: t.entry_ms):
        s, e = max(t.entry_ms, start_ms), min(t.exit_ms, end_ms)
        if e <= s:
            continue
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                covered += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        covered += cur_e - cur_s
    return covered / (end_ms - start_ms)


def cash_flows(ledger: Sequence[LedgerEntry]) -> dict[str, float]:
    fees = sum(e.amount for e in ledger if e.kind == "fee")
    received = sum(e.amount for e in ledger if e.kind == "funding" and e.amount > 0)
    paid = -sum(e.amount for e in ledger if e.kind == "funding" and e.amount < 0)
    return {"fees_paid": fees, "funding_received": received, "funding_paid": paid, "funding_net": received - paid}


def _breakdown(trades: Sequence[Trade], ledger: Sequence[LedgerEntry], key: str,
               start_ms: int, end_ms: int) -> dict[str, dict]:
    groups = sorted({getattr(t, key) for t in trades} | {getattr(e, key) for e in ledger})
    return {g: {**trade_stats([t for t in trades if getattr(t, key) == g]),
                "exposure": exposure([t for t in trades if getattr(t, key) == g], start_ms, end_ms),
                **cash_flows([e for e in ledger if getattr(e, key) == g])}
            for g in groups}


def kpis(stats: dict) -> list[dict]:
    """The plan's KPIs beside their thresholds; ``pass`` is None when the value is undefined."""
    out = []
    for name, op, threshold in KPI_THRESHOLDS:
        v = stats.get(name)
        ok = None if v is None else (v > threshold if op == ">" else v < threshold)
        out.append({"kpi": name, "value": v, "op": op, "threshold": threshold, "pass": ok})
    return out


# What each headline figure is, shown beside it in the CLI summary and the report.
CONVENTIONS: dict[str, str] = {
    "total_return": "time-weighted, flow-adjusted (a deposit is not a gain), first to last equity point",
    "cagr": "total return compounded to 365-day years over the run's span",
    "monthly_return_equivalent": "the constant monthly return (365.25/12-day months) that compounds to the total "
                                 "return over the run's span; not a calendar month (those are monthly_returns)",
    "monthly_returns": "compounded return of each UTC calendar month the run touches (partial months included)",
    "sharpe": "daily returns between UTC midnights (complete days only, flow-adjusted), mean / sample std × √365, "
              "risk-free rate 0; n/a under 7 days",
    "sortino": "daily UTC returns, mean / downside deviation √(mean(min(r, 0)²)) × √365, risk-free rate 0",
    "annual_volatility": "sample std of daily UTC returns × √365",
    "max_drawdown": "largest fall of the flow-adjusted equity index from a previous peak, valued at every replay "
                    "step (the data's full resolution)",
    "win_rate": "wins / (wins + losses) over closed strategy round trips (a carry pair or a hedged entry counts "
                "once, with its funding); |net P&L| < 0.01 is neither",
    "exposure": "share of the run with at least one strategy round trip open",
}


def compute(points: Sequence[EquityPoint], trades: Sequence[Trade], ledger: Sequence[LedgerEntry],
            legs: Sequence[Trade] | None = None) -> dict:
    """Every statistic of a run as a JSON-ready dict (None where undefined).

    `trades` are strategy round trips; `legs` (default: the same) are the per-market trips the per-venue
    breakdown counts."""
    daily = daily_returns(points)
    rets = period_returns(points)
    dd = drawdown(points, rets)
    start = points[0].ts_ms if points else 0
    end = points[-1].ts_ms if points else 0
    stats: dict = {
        "start_ms": start if points else None,
        "end_ms": end if points else None,
        "start_equity": points[0].equity if points else None,
        "end_equity": points[-1].equity if points else None,
        "net_flows": sum(islice(points.flow, 1, None)) if isinstance(points, EquityCurve)
        else sum(p.flow for p in points[1:]),
        "total_return": total_return(points, rets),
        "cagr": cagr(points, rets),
        "monthly_return_equivalent": monthly_return_equivalent(points, rets),
        "monthly_returns": monthly_returns(points, rets),
        "days": len(daily),
        "annual_volatility": annualized_volatility(daily),
        "sharpe": sharpe(daily),
        "sortino": sortino(daily),
        "max_drawdown": dd.max_drawdown if dd else None,
        "max_drawdown_peak_ms": dd.peak_ms if dd else None,
        "max_drawdown_trough_ms": dd.trough_ms if dd else None,
        "max_drawdown_recovery_ms": dd.recovery_ms if dd else None,
        "max_drawdown_duration_days": dd.max_duration_ms / DAY_MS if dd else None,
        **trade_stats(trades),
        "exposure": exposure(trades, start, end),
        **cash_flows(ledger),
        "by_strategy": _breakdown(trades, ledger, "strategy", start, end),
        "by_venue": _breakdown(trades if legs is None else legs, ledger, "venue", start, end),
        "conventions": dict(CONVENTIONS),
    }
    stats["kpis"] = kpis(stats)
    return stats
