"""`ate backtest`, `ate compare`, `ate sweep`: the command functions cli.py registers."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ate.backtest.data import DATA_DIR as DEFAULT_DATA_DIR
from ate.backtest.data import BacktestData, DataError, load_window, parse_data_specs, parse_date
from ate.backtest.inputs import check_markets, config_filters, declared_mode
from ate.config import EngineConfig, load_config_or_exit
from ate.data.loaders import DataFormatError
from ate.signals.engine import signal_markets

console = Console()
err = Console(stderr=True)

CONFIG = typer.Option(..., "--config", help="Engine config JSON.")
FROM = typer.Option(..., "--from", help="Start date (UTC), YYYY-MM-DD or ISO 8601.")
TO = typer.Option(..., "--to", help="End date (UTC), exclusive.")
DATA = typer.Option(None, "--data", help="MARKET=PATH, funding:MARKET=PATH or dvol=PATH (repeatable). "
                    "Default: the primary market's 1h history, its perps' funding and its asset's DVOL, found by "
                    "name in the data directories.")
DATA_DIR = typer.Option(None, "--data-dir", help="Also look for data files here (repeatable; after ./data).")
CAPITAL = typer.Option(None, "--capital", help="Starting capital (quote); default the config mode's: "
                       "canary.initial_capital for canary, the first capital stage for live, else "
                       "risk_limits.capital_usd.")


@contextmanager
def _engine_logs_to_stderr() -> Iterator[None]:
    """While a command runs, engine logs go to stderr at WARNING and above: stdout carries the results
    (--json) only, and a replay's thousands of per-order risk notes would drown them."""
    saved = structlog.get_config()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
                        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        yield
    finally:
        structlog.configure(**saved)


def _fail(lines: list[str], code: int = 2) -> typer.Exit:
    for line in lines:
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def load_backtest_config(path: Path) -> EngineConfig:
    """The config at `path`, validated in backtest mode: nothing is sent to a venue, so no keys are needed."""
    from ate.strategies.loader import check_strategies_or_exit

    cfg = load_config_or_exit(path, overrides={"mode": "backtest"})
    check_strategies_or_exit(cfg)
    return cfg


def _window(cfg: EngineConfig, start: str, end: str, data: list[str] | None,
            dirs: list[Path] | None = None) -> tuple[BacktestData, int, int]:
    try:
        start_ms, end_ms = parse_date(start), parse_date(end)
        if end_ms <= start_ms:
            raise DataError(f"--to {end} is not after --from {start}")
        bt = load_window(cfg.markets.primary, parse_data_specs(data or []), start_ms, end_ms,
                         data_dirs=[DEFAULT_DATA_DIR, *(dirs or [])], instruments=config_filters(cfg),
                         signal_markets=signal_markets(cfg))
        check_markets(cfg, bt)  # a strategy market the config does not declare: refused before the run
        return bt, start_ms, end_ms
    except (DataError, DataFormatError) as exc:
        raise _fail([f"data: {exc}"]) from None


def clean_json(x: Any) -> Any:
    """JSON-safe: non-finite floats → null, Decimals → strings."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Decimal):
        return str(x)
    if isinstance(x, dict):
        return {str(k): clean_json(v) for k, v in x.items()}
    if isinstance(x, Sequence) and not isinstance(x, str | bytes):  # lists, tuples, a result's compact logs
        return [clean_json(v) for v in x]
    return x


def dumps(x: Any) -> str:
    return json.dumps(clean_json(x), sort_keys=True, indent=2, allow_nan=False)


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v * 100:.2f} %" if pct else f"{v:,.4f}"
    return str(v)


@contextmanager
def progress_on_stderr(label: str) -> Iterator[Callable[[int, int], None]]:
    """`update(done, total)` for a long run, on stderr whatever the output mode (stdout stays the results):
    a live bar on a terminal, otherwise one plain line per tenth of the way (logs and CI keep them)."""
    if err.is_terminal:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=err, transient=True) as prog:
            task = prog.add_task(label, total=None)
            yield lambda done, total: prog.update(task, completed=done, total=total)
        return
    shown = [-1]

    def update(done: int, total: int) -> None:
        tenth = done * 10 // total if total else 10
        if tenth > shown[0]:
            shown[0] = tenth
            sys.stderr.write(f"{label}: {done:,}/{total:,} ({done * 100 // total if total else 100} %)\n")
            sys.stderr.flush()

    yield update


def backtest_cmd(config: Path = CONFIG, start: str = FROM, end: str = TO, data: list[str] | None = DATA,
                 data_dir: list[Path] | None = DATA_DIR,
                 report: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML report."),
                 as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON (for scripts)."),
                 capital: float | None = CAPITAL) -> None:
    """Replay recorded candles, funding and DVOL through the live engine with simulated fills."""
    from ate.backtest.runner import run_backtest

    cfg = load_backtest_config(config)
    bt_data, _, _ = _window(cfg, start, end, data, data_dir)
    with _engine_logs_to_stderr(), progress_on_stderr("backtest") as update:
        res = run_backtest(cfg, bt_data, capital=None if capital is None else Decimal(repr(capital)),
                           progress=update, mode=declared_mode(config))
    if report is not None:
        from ate.backtest.report import write_report

        write_report(res, report, title=f"ate backtest · {config.name}")
    if as_json:
        typer.echo(dumps(res.to_json()))
        return
    _print_summary(res)
    if report is not None:
        console.print(f"report: {report}")


SUMMARY_KEYS = (("total_return", True), ("cagr", True), ("monthly_return_equivalent", True), ("sharpe", False),
                ("sortino", False), ("max_drawdown", True), ("win_rate", True), ("profit_factor", False),
                ("trades", False), ("open_at_end", False), ("exposure", True), ("fees_paid", False),
                ("funding_net", False))
PCT_KPIS = ("monthly_return_equivalent", "max_drawdown", "win_rate")


def _utc(ms: int) -> str:
    return f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%d %H:%M}"


def _print_summary(res: Any) -> None:
    s = res.stats
    conventions = s.get("conventions", {})
    t = Table(title=f"backtest {datetime.fromtimestamp(res.start_ms / 1000, UTC):%Y-%m-%d} → "
                    f"{datetime.fromtimestamp(res.end_ms / 1000, UTC):%Y-%m-%d} ({res.bars:,} candles)")
    t.add_column("statistic")
    t.add_column("value", justify="right")
    t.add_column("what it is")
    for key, pct in SUMMARY_KEYS:
        t.add_row(key, _fmt(s.get(key), pct), conventions.get(key, ""))
    t.add_row("final equity", str(res.final_equity.quantize(Decimal("0.01"))),
              f"starting capital from {res.capital_source}" if res.capital_source else "")
    console.print(t)
    k = Table(title="operator plan KPIs")
    for col in ("KPI", "value", "threshold", "result"):
        k.add_column(col)
    for row in s["kpis"]:
        verdict = {True: "[green]PASS[/]", False: "[red]FAIL[/]", None: "n/a"}[row["pass"]]
        pct = row["kpi"] in PCT_KPIS
        k.add_row(row["kpi"], _fmt(row["value"], pct), f'{row["op"]} {_fmt(row["threshold"], pct)}', verdict)
    console.print(k)
    _print_per_market(s)
    _print_periods(s)
    if res.note:
        console.print(f"note: {res.note}")
    console.print(f"{res.bars:,} candles (+ {res.warmup_bars:,} warm-up candles for the signal modules) in "
                  f"{res.elapsed_s:.1f} s")


def _print_per_market(s: dict[str, Any]) -> None:
    """Each strategy's results per market (or carry pair) when a strategy was given several."""
    per = s.get("per_market")
    if not per:
        return
    t = Table(title="per market")
    for col in ("strategy", "market", "trades", "win rate", "net P&L", "veto periods"):
        t.add_column(col)
    for strategy, markets in sorted(per.items()):
        for market, v in markets.items():
            t.add_row(strategy, market, str(v["trades"]), _fmt(v["win_rate"], True), _fmt(v["net_pnl"], False),
                      str(len(v.get("veto_periods") or [])))
    console.print(t)


def _print_periods(s: dict[str, Any]) -> None:
    several = "per_market" in s  # each period names the market whose signal engine it belongs to
    for key, title in (("veto_periods", "veto periods"), ("warmup_periods", "warm-up periods")):
        rows = s.get(key) or []
        if not rows:
            console.print(f"{title}: none")
            continue
        t = Table(title=f"{title} ({len(rows)})")
        for col in (("market",) if several else ()) + ("module", "scope", "from (UTC)", "to (UTC)", "decisions",
                                                       "reason"):
            t.add_column(col)
        for p in rows:
            to = _utc(p["to_ms"]) + (" (still at end)" if p["open_at_end"] else "")
            t.add_row(*((p["market"],) if several else ()), p["module"], p.get("scope", ""), _utc(p["from_ms"]), to,
                      f'{p["decisions"]:,}', p["reason"])
        console.print(t)
    for line in s.get("start_date_dependence") or []:
        console.print(f"[yellow]results depend on the start date[/]: {line}", highlight=False)


def compare_cmd(config: Path = CONFIG, start: str = FROM, end: str = TO, data: list[str] | None = DATA,
                data_dir: list[Path] | None = DATA_DIR,
                store_url: str | None = typer.Option(None, "--store", help="Store URL; default the config's."),
                as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON.")) -> None:
    """Backtest the window a shadow or paper session recorded and list where signals and trades differ."""
    from ate.backtest.compare import compare, session_records
    from ate.backtest.runner import run_backtest
    from ate.store import Store

    cfg = load_backtest_config(config)
    bt_data, start_ms, end_ms = _window(cfg, start, end, data, data_dir)
    store = Store(store_url or cfg.store.url)
    try:
        s_dec, s_orders = session_records(store, start_ms, end_ms)
    finally:
        store.close()
    with _engine_logs_to_stderr(), progress_on_stderr("compare: backtest of the window") as update:
        res = run_backtest(cfg, bt_data, progress=update, mode=declared_mode(config))
    cmp = compare(s_dec, res.decisions, s_orders, res.orders, start_ms, end_ms)
    if as_json:
        typer.echo(dumps(cmp.to_json()))
    else:
        console.print(f"decisions: session {cmp.decisions_session}, backtest {cmp.decisions_backtest}; "
                      f"orders: session {cmp.orders_session}, backtest {cmp.orders_backtest}")
        if cmp.identical:
            console.print("[green]no differences[/]")
        else:
            t = Table(title=f"{len(cmp.differences)} differences")
            for col in ("time (UTC)", "kind", "what", "cause"):
                t.add_column(col)
            for d in cmp.differences:
                t.add_row(f"{datetime.fromtimestamp(d.ts_ms / 1000, UTC):%Y-%m-%d %H:%M}", d.kind, d.what, d.cause)
            console.print(t)
    if not cmp.identical:
        raise typer.Exit(1)


def sweep_cmd(config: Path = CONFIG, grid: Path = typer.Option(..., "--grid", help="JSON {\"dotted.path\": [values]}."),
              start: str = FROM, end: str = TO, data: list[str] | None = DATA,
              data_dir: list[Path] | None = DATA_DIR,
              workers: int = typer.Option(max(1, os.cpu_count() or 1), "--workers", min=1, help="Local processes."),
              ray_address: str | None = typer.Option(None, "--ray-address",
                                                     help="Run on the existing Ray cluster at HOST:PORT (pip install 'ate[ray]'; ate installed on every node)."),
              rank_by: str = typer.Option("sharpe", "--rank-by", help="Statistic to rank by."),
              top: int = typer.Option(20, "--top", min=1, help="Rows in the ranked table."),
              as_json: bool = typer.Option(False, "--json", help="Print every result as JSON, ranked.")) -> None:
    """Run one backtest per grid combination in parallel and rank them."""
    from ate.backtest.sweep import (
        RANK_KEYS,
        GridError,
        Job,
        backtest_data,
        configs_for,
        load_grid,
        rank,
        run_local,
        run_ray,
    )

    if rank_by not in RANK_KEYS:
        raise _fail([f"--rank-by: one of {', '.join(RANK_KEYS)}"])
    cfg = load_backtest_config(config)
    try:
        combos = configs_for(cfg, load_grid(grid))
    except GridError as exc:
        raise _fail(exc.problems) from None
    bt_data, _, _ = _window(cfg, start, end, data, data_dir)
    mode = declared_mode(config)
    jobs = [Job(i, params, backtest_data(c), mode.value) for i, (params, c) in enumerate(combos)]
    with _engine_logs_to_stderr(), \
            progress_on_stderr(f"sweep ({'ray' if ray_address else f'{workers} workers'})") as update:
        finished = [0]
        update(0, len(jobs))

        def done(_: dict) -> None:
            finished[0] += 1
            update(finished[0], len(jobs))

        try:
            results = (run_ray(jobs, bt_data, ray_address, done) if ray_address
                       else run_local(jobs, bt_data, workers, done))
        except GridError as exc:
            raise _fail(exc.problems) from None
    ranked = rank(results, rank_by)
    if as_json:
        typer.echo(dumps(ranked))
        return
    keys = list(combos[0][0]) if combos else []
    t = Table(title=f"{len(ranked)} backtests ranked by {rank_by}")
    t.add_column("#", justify="right")
    short = [k.rsplit(".", 1)[-1] for k in keys]
    for k, label in zip(keys, short, strict=True):
        t.add_column(label if short.count(label) == 1 else k)
    for col in ("total_return", "sharpe", "max_drawdown", "win_rate", "trades"):
        t.add_column(col, justify="right")
    for i, r in enumerate(ranked[:top], 1):
        t.add_row(str(i), *(str(r["params"][k]) for k in keys), _fmt(r["total_return"], True), _fmt(r["sharpe"]),
                  _fmt(r["max_drawdown"], True), _fmt(r["win_rate"], True), str(r["trades"]))
    console.print(t)
