"""Self-contained HTML report of a backtest: plotly charts with the library inlined once (opens offline).

Sections: KPI table (the operator plan's thresholds, pass/fail), statistics, equity with drawdown,
monthly returns heatmap, trades on price, per-module signal timeline, funding captured. Every number
shown comes from the run; an undefined statistic is shown as "n/a".
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ate.backtest.runner import BacktestResult
from ate.backtest.stats import drawdown_series

MAX_POINTS = 20_000  # price points drawn per market (evenly thinned beyond that)
VOTE_SIGN = {"BUY": 1.0, "SELL": -1.0}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
CHART_IDS = ("equity", "monthly", "trades", "signals", "funding")

PERCENT = {"total_return", "cagr", "monthly_return_equivalent", "annual_volatility", "max_drawdown", "win_rate",
           "exposure"}
SUMMARY = (
    ("total_return", "Total return"), ("cagr", "CAGR"),
    ("monthly_return_equivalent", "Monthly equivalent of the total return (not a calendar month)"),
    ("annual_volatility", "Annualized volatility"), ("sharpe", "Sharpe (daily UTC returns, √365, rf 0)"),
    ("sortino", "Sortino (daily UTC returns, √365, rf 0)"),
    ("max_drawdown", "Max drawdown (every replay step)"), ("max_drawdown_duration_days", "Longest drawdown (days)"),
    ("trades", "Trades (closed strategy round trips)"), ("open_at_end", "Market legs still open at the end"),
    ("win_rate", "Win rate"), ("profit_factor", "Profit factor"),
    ("exposure", "Exposure"), ("fees_paid", "Fees paid"), ("funding_received", "Funding received"),
    ("funding_paid", "Funding paid"), ("start_equity", "Start equity"), ("end_equity", "End equity"),
)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def fmt(value: Any, key: str = "") -> str:
    """A statistic for display; None (undefined) is "n/a"."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value * 100:,.2f} %" if key in PERCENT else f"{value:,.4f}" if abs(value) < 100 else f"{value:,.2f}"
    return html.escape(str(value))


def _thin(points: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    if len(points) <= MAX_POINTS:
        return list(points)
    step = len(points) / MAX_POINTS
    return [points[int(i * step)] for i in range(MAX_POINTS)] + [points[-1]]


def _thin_keep(n: int, keep: Sequence[int]) -> list[int]:
    """Indices of at most ~MAX_POINTS evenly spaced points of n, plus `keep` (e.g. the deepest drawdown)."""
    if n <= MAX_POINTS:
        return list(range(n))
    step = n / MAX_POINTS
    return sorted({int(i * step) for i in range(MAX_POINTS)} | {n - 1, *keep})


def equity_figure(res: BacktestResult) -> go.Figure:
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    dd_all = drawdown_series(res.equity)  # at full resolution; the chart shows a thinned copy with the trough
    idx = _thin_keep(len(res.equity), [max(range(len(dd_all)), key=dd_all.__getitem__)] if dd_all else [])
    pts = [res.equity[i] for i in idx]
    dd = [dd_all[i] for i in idx]
    xs = [_dt(p.ts_ms) for p in pts]
    fig.add_trace(go.Scatter(x=xs, y=[p.equity for p in pts], name="equity", line={"width": 1.5}), 1, 1)
    fig.add_trace(go.Scatter(x=xs, y=[-d * 100 for d in dd], name="drawdown %", fill="tozeroy",
                             line={"color": "#c0392b", "width": 1}), 2, 1)
    fig.update_yaxes(title_text="equity (quote)", row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", row=2, col=1)
    fig.update_layout(title="Equity and drawdown", height=520, margin={"t": 50, "b": 30})
    return fig


def monthly_figure(res: BacktestResult) -> go.Figure:
    monthly: dict[str, float] = res.stats.get("monthly_returns") or {}
    years = sorted({m[:4] for m in monthly})
    z = [[monthly.get(f"{y}-{i + 1:02d}") for i in range(12)] for y in years]
    text = [["n/a" if v is None else f"{v * 100:.1f}%" for v in row] for row in z]
    zpct = [[None if v is None else v * 100 for v in row] for row in z]
    fig = go.Figure(go.Heatmap(z=zpct, x=list(MONTHS), y=years, text=text, texttemplate="%{text}",
                               colorscale="RdYlGn", zmid=0, colorbar={"title": "%"}))
    fig.update_layout(title="Monthly returns", height=max(260, 60 + 40 * len(years)), yaxis={"type": "category"})
    return fig


def trades_figure(res: BacktestResult) -> go.Figure:
    fig = go.Figure()
    for market, pts in sorted(res.prices.items()):
        pts = _thin(pts)
        fig.add_trace(go.Scatter(x=[_dt(t) for t, _ in pts], y=[p for _, p in pts], name=f"{market} close",
                                 line={"width": 1}))
    for side, symbol, color in (("BUY", "triangle-up", "#27ae60"), ("SELL", "triangle-down", "#c0392b")):
        fills = [f for f in res.fills if f["side"] == side]
        fig.add_trace(go.Scatter(x=[_dt(f["ts_ms"]) for f in fills], y=[float(f["price"]) for f in fills],
                                 mode="markers", name=f"{side.lower()} fills",
                                 marker={"symbol": symbol, "size": 8, "color": color},
                                 text=[f"{f['strategy']} {f['market']} {f['qty']} @ {f['price']}" for f in fills]))
    fig.update_layout(title="Trades on price", height=480)
    return fig


def signals_figure(res: BacktestResult) -> go.Figure:
    """One row per module: signed vote confidence (BUY +, SELL −), size multiplier where a module has one."""
    modules: list[str] = []
    for d in res.decisions:
        for name in d.get("outputs", {}):
            if name not in modules:
                modules.append(name)
    xs = [_dt(d["ts"]) for d in res.decisions]
    z, text = [], []
    for name in modules:
        row, labels = [], []
        for d in res.decisions:
            out = d.get("outputs", {}).get(name) or {}
            vote = out.get("vote")
            if vote:
                row.append(VOTE_SIGN.get(vote.get("side"), 0.0) * (vote.get("confidence") or 0.0))
            else:
                row.append(out.get("size_multiplier"))
            labels.append(f"{out.get('status', '?')} {vote.get('side') if vote else ''}")
        z.append(row)
        text.append(labels)
    combined = [VOTE_SIGN.get(d["combined"].get("side"), 0.0) * (d["combined"].get("confidence") or 0.0)
                for d in res.decisions]
    fig = go.Figure(go.Heatmap(z=[*z, combined], x=xs, y=[*modules, "combined"], text=[*text, [""] * len(xs)],
                               hovertemplate="%{y} %{x}<br>%{text}<br>%{z:.3f}<extra></extra>",
                               colorscale="RdBu", zmid=0))
    fig.update_layout(title="Signal timeline per module (vote: +BUY / −SELL × confidence; scalers: multiplier)",
                      height=120 + 34 * (len(modules) + 1))
    if not res.decisions:
        _empty(fig, "no signal decisions in this run (the primary market was not replayed)")
    return fig


def _empty(fig: go.Figure, text: str) -> None:
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")


def funding_figure(res: BacktestResult) -> go.Figure:
    fig = go.Figure()
    by_market: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for p in res.funding:
        prev = by_market[p.market][-1][1] if by_market[p.market] else 0.0
        by_market[p.market].append((p.ts_ms, prev + float(p.amount)))
    for market, pts in sorted(by_market.items()):
        fig.add_trace(go.Scatter(x=[_dt(t) for t, _ in pts], y=[v for _, v in pts], name=market,
                                 line={"shape": "hv"}))
    fig.update_layout(title="Funding captured (cumulative, received − paid)", height=360)
    if not by_market:
        _empty(fig, "no funding payments in this run")
    return fig


def _table(rows: Sequence[Sequence[str]], header: Sequence[str], cls: str = "") -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def kpi_table(stats: dict[str, Any]) -> str:
    rows = []
    for k in stats.get("kpis", []):
        verdict = {True: '<span class="pass">PASS</span>', False: '<span class="fail">FAIL</span>',
                   None: '<span class="na">n/a</span>'}[k["pass"]]
        threshold = f'{html.escape(k["op"])} {fmt(k["threshold"], k["kpi"])}'
        rows.append((html.escape(k["kpi"]), fmt(k["value"], k["kpi"]), threshold, verdict))
    return _table(rows, ("KPI", "value", "threshold", "result"), "kpi")


def conventions_table(stats: dict[str, Any]) -> str:
    rows = [(html.escape(k), html.escape(v)) for k, v in stats.get("conventions", {}).items()]
    return _table(rows, ("figure", "what it is"), "conventions")


def periods_section(stats: dict[str, Any]) -> str:
    """Every veto and warm-up period (module, scope, from, to, reason) and the start-date caveat."""
    parts = []
    several = "per_market" in stats  # each period names the market whose signal engine it belongs to
    for key, title in (("veto_periods", "Veto periods"), ("warmup_periods", "Warm-up periods")):
        rows = [((html.escape(p["market"]),) if several else ()) + (
                 html.escape(p["module"]), html.escape(p.get("scope", "")), f"{_dt(p['from_ms']):%Y-%m-%d %H:%M}",
                 f"{_dt(p['to_ms']):%Y-%m-%d %H:%M}" + (" (still at end)" if p["open_at_end"] else ""),
                 f"{p['decisions']:,}", html.escape(p["reason"]))
                for p in stats.get(key) or []]
        head = ("module", "scope", "from (UTC)", "to (UTC)", "decisions", "reason")
        body = _table(rows, (("market",) if several else ()) + head) if rows else "<p>none</p>"
        parts.append(f"<h2>{title}</h2>{body}")
    dep = stats.get("start_date_dependence") or []
    if dep:
        items = "".join(f"<li>{html.escape(x)}</li>" for x in dep)
        parts.append(f'<div class="note" id="start-date"><b>These results depend on the start date.</b>'
                     f"<ul>{items}</ul></div>")
    return "".join(parts)


def per_market_section(stats: dict[str, Any]) -> str:
    """Each strategy's results per market (or carry pair), with the vetoes of each market's signals."""
    per = stats.get("per_market")
    if not per:
        return ""
    cols = ("trades", "win_rate", "profit_factor", "net_pnl", "avg_trade")
    rows = [(html.escape(strategy), html.escape(market), *(fmt(v.get(c), c) for c in cols),
             f"{len(v.get('veto_periods') or [])}")
            for strategy, markets in sorted(per.items()) for market, v in markets.items()]
    return f"<h2>Per market</h2>{_table(rows, ('strategy', 'market', *cols, 'veto periods'))}"


def breakdown_table(groups: dict[str, dict[str, Any]], label: str) -> str:
    cols = ("trades", "win_rate", "profit_factor", "net_pnl", "exposure", "fees_paid", "funding_net")
    rows = [(html.escape(g), *(fmt(v.get(c), c) for c in cols)) for g, v in sorted(groups.items())]
    return _table(rows, (label, *cols))


def render(res: BacktestResult, title: str = "ate backtest") -> str:
    stats = res.stats
    figs = [equity_figure(res), monthly_figure(res), trades_figure(res), signals_figure(res), funding_figure(res)]
    charts = "".join(
        f'<section>{fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"chart-{cid}")}</section>'
        for i, (fig, cid) in enumerate(zip(figs, CHART_IDS, strict=True)))
    period = f"{_dt(res.start_ms):%Y-%m-%d %H:%M} → {_dt(res.end_ms):%Y-%m-%d %H:%M} UTC"
    summary = _table([(label, fmt(stats.get(key), key)) for key, label in SUMMARY], ("statistic", "value"))
    note = f'<p class="note">{html.escape(res.note)}</p>' if res.note else ""
    capital = f" · starting capital from {html.escape(res.capital_source)}" if res.capital_source else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin: 8px 0 20px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.pass {{ color: #1e8449; font-weight: bold; }} .fail {{ color: #c0392b; font-weight: bold; }}
.na {{ color: #888; }} .note {{ background: #fff7d6; padding: 6px 10px; }}
.grid {{ display: flex; gap: 32px; flex-wrap: wrap; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>run <b>{html.escape(res.config_run_id)}</b> · {period} · {res.bars:,} candles · final equity
<b>{html.escape(str(res.final_equity.quantize(Decimal("0.01"))))}</b>{capital}</p>
{note}
<div class="grid"><div><h2>Operator plan KPIs</h2>{kpi_table(stats)}</div>
<div><h2>Statistics</h2>{summary}</div></div>
<p>{stats.get("warmup_bars", res.warmup_bars):,} candles of history before the window warmed the signal
modules up (no strategy saw them).</p>
{periods_section(stats)}
<h2>How each figure is computed</h2>{conventions_table(stats)}
<h2>Per strategy</h2>{breakdown_table(stats.get("by_strategy", {}), "strategy")}
{per_market_section(stats)}
<h2>Per venue</h2>{breakdown_table(stats.get("by_venue", {}), "venue")}
{charts}
</body></html>
"""


def write_report(res: BacktestResult, path: str | Path, title: str = "ate backtest") -> Path:
    path = Path(path)
    path.write_text(render(res, title), encoding="utf-8")
    return path
