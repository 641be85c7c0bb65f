"""Terminal views for operators: the live summary of `ate run` and the stored `ate status`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.table import Table

MODULES = ("bitvol", "lxvx", "garch", "kelly", "gamma", "emergency", "atr_supertrend", "multi_timeframe")
STYLE = {"OK": "green", "DEGRADED": "yellow", "WARMUP": "cyan", "STALE": "red", "ERROR": "bold red"}


def _utc(ms: int | None) -> str:
    return "-" if not ms else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _kv(title: str, rows: list[tuple[str, Any]]) -> Table:
    t = Table(title=title, show_header=False, title_justify="left", expand=False)
    for k, v in rows:
        t.add_row(k, "-" if v is None else str(v))
    return t


def run_summary(s: dict[str, Any]) -> Group:
    """One screen: mode, clock, state, modules, strategies, P&L and positions."""
    head = _kv("ate", [("mode", s.get("mode")), ("clock (UTC)", _utc(s.get("now_ms"))),
                       ("trading state", s.get("trading_state")), ("equity USD", f"{s.get('equity_usd', 0):,.2f}"),
                       ("daily loss USD", f"{s.get('daily_loss_usd', 0):,.2f}"),
                       ("books / candles", f"{s.get('books', 0):,} / {s.get('candles', 0):,}"),
                       ("decisions", s.get("decisions")), ("open orders", s.get("open_orders"))])
    mods = Table(title="modules", title_justify="left")
    for m in MODULES:
        mods.add_column(m, justify="center")
    statuses = s.get("modules", {})
    mods.add_row(*[f"[{STYLE.get(statuses.get(m, ''), 'dim')}]{statuses.get(m, '-')}[/]" for m in MODULES])
    strat = Table(title="strategies", title_justify="left")
    strat.add_column("strategy")
    strat.add_column("metrics")
    for name, metrics in s.get("strategies", {}).items():
        shown = ", ".join(f"{k}={_short(v)}" for k, v in metrics.items() if not isinstance(v, (dict, list)))
        strat.add_row(name, shown)
    pos = Table(title="positions", title_justify="left")
    for col in ("market", "qty", "entry", "mark"):
        pos.add_column(col)
    for market, p in s.get("positions", {}).items():
        pos.add_row(market, p["qty"], p["entry"], p["mark"])
    return Group(head, mods, strat, pos)


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _basis(b: dict[str, Any] | None) -> str:
    if b is None:
        return "-"
    if b["vetoed"]:
        return f"VETOED since {_utc(b['since_ms'])}: {b['reason']}"
    return f"trading (resumed {_utc(b['since_ms'])})"


def _stuck(st: dict[str, Any] | None) -> str:
    if st is None:
        return "-"
    return f"STUCK since {_utc(st['since_ms'])}: {st['residual']} base unmatched (attempt {st['attempt']}), retrying"


def status_tables(s: dict[str, Any]) -> Group:
    eng = s["engine"]
    head = _kv("ate status", [("trading state", s["trading_state"].get("state")),
                              ("set by", s["trading_state"].get("who") or "-"),
                              ("why", s["trading_state"].get("why") or "-"),
                              ("engine", eng.get("phase") or ("running" if eng["running_per_store"] else
                                                              "not running")),
                              ("last start (UTC)", _utc(eng["last_started_ms"])),
                              ("last stop (UTC)", _utc(eng["last_stopped_ms"])),
                              ("equity", s["equity"]), ("P&L today", s["pnl_today"]),
                              ("arbitrage basis", _basis(s.get("arbitrage_basis"))),
                              ("arbitrage stuck", _stuck(s.get("arbitrage_stuck")))])
    mods = Table(title="modules", title_justify="left")
    for m in MODULES:
        mods.add_column(m, justify="center")
    mods.add_row(*[s["modules"].get(m, "-") for m in MODULES])
    pauses = Table(title="venue pauses in force", title_justify="left")
    for col in ("venue", "until (UTC)", "reason"):
        pauses.add_column(col)
    for venue, p in s.get("venue_pauses", {}).items():
        pauses.add_row(venue, _utc(p["until_ms"]), p.get("reason", ""))
    pos = Table(title="positions", title_justify="left")
    for col in ("market", "qty", "entry"):
        pos.add_column(col)
    for p in s["positions"]:
        pos.add_row(p["market"], p["qty"], p["entry"])
    orders = Table(title="open orders", title_justify="left")
    for col in ("client_order_id", "market", "side", "qty", "price", "status"):
        orders.add_column(col)
    for o in s["open_orders"]:
        orders.add_row(*(o[c] for c in ("client_order_id", "market", "side", "qty", "price", "status")))
    parts = [head, mods, *([pauses] if s.get("venue_pauses") else []), pos, orders]
    if s.get("unresolved_orders"):  # outcome unknown at the venue: their risk headroom is held
        unresolved = Table(title="[red]UNRESOLVED orders (outcome unknown, headroom held)[/]", title_justify="left")
        for col in ("client_order_id", "market", "since (UTC)", "last error"):
            unresolved.add_column(col)
        for u in s["unresolved_orders"]:
            unresolved.add_row(u["client_order_id"], str(u["market"] or "-"), _utc(u["since_ms"] or u["alerted_ms"]),
                               str(u["last_error"] or "-"))
        parts.append(unresolved)
    return Group(*parts)
