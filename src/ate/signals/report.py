"""`ate signals`: run every module over a candle file offline, one CSV row per decision bar."""

from __future__ import annotations

import csv
import gzip
import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ate.config.modules import ModulesConfig
from ate.data.candles import INTERVAL_MS, MINUTE_MS, Candle
from ate.data.loaders import iter_candles, load_dvol
from ate.signals.engine import MODULE_ORDER, TF_BY_MS, Decision, SignalEngine

# (column, module, key in `values`) of the key intermediates written next to the generic columns.
VALUE_COLUMNS = [
    ("atr", "atr_supertrend", "atr"), ("atr_pct", "atr_supertrend", "atr_pct"),
    ("st_line", "atr_supertrend", "st_line"), ("st_dir", "atr_supertrend", "st_dir"),
    ("sma_fast", "atr_supertrend", "sma_fast"), ("sma_slow", "atr_supertrend", "sma_slow"),
    ("st_strength", "atr_supertrend", "strength"),
    ("mtf_dir_15m", "multi_timeframe", "dir_15m"), ("mtf_dir_1h", "multi_timeframe", "dir_1h"),
    ("mtf_dir_4h", "multi_timeframe", "dir_4h"), ("mtf_dir_1d", "multi_timeframe", "dir_1d"),
    ("lxvx_score", "lxvx", "score"), ("lxvx_vwap", "lxvx", "vwap"), ("lxvx_deviation", "lxvx", "deviation"),
    ("bitvol_source", "bitvol", "source"), ("bitvol_value", "bitvol", "value"),
    ("bitvol_percentile", "bitvol", "percentile"), ("bitvol_n", "bitvol", "n"), ("bitvol_vrp", "bitvol", "vrp"),
    ("garch_model", "garch", "model"), ("garch_sigma_1step", "garch", "sigma_1step_ann"),
    ("garch_sigma_longrun", "garch", "sigma_longrun_ann"), ("garch_mu", "garch", "mu"),
    ("garch_omega", "garch", "omega"), ("garch_alpha", "garch", "alpha"), ("garch_beta", "garch", "beta"),
    ("garch_rv30", "garch", "rv30"), ("garch_spike", "garch", "spike"),
    ("kelly_wins", "kelly", "wins"), ("kelly_losses", "kelly", "losses"),
    ("emergency_level", "emergency", "level"),
]
MODULE_FIELDS = ("status", "vote", "confidence", "multiplier", "regime", "vetoes", "actions", "reason")


def header() -> list[str]:
    cols = ["time_utc", "close_ms", "open", "high", "low", "close", "volume", "complete"]
    cols += [f"{m}_{f}" for m in MODULE_ORDER for f in MODULE_FIELDS]
    cols += [c for c, _, _ in VALUE_COLUMNS]
    cols += ["decision", "decision_confidence", "buy_weight", "sell_weight", "total_weight", "decision_reason",
             "intent", "intent_reason", "target_fraction", "target_notional"]
    return cols


def _cell(x: Any) -> Any:
    if x is None:
        return ""
    if isinstance(x, float):
        return repr(x) if x == x else ""
    return x


def row(d: Decision, equity: float | None) -> list[Any]:
    b = d.bar
    cells: list[Any] = [datetime.fromtimestamp(d.ts / 1000, UTC).strftime("%Y-%m-%d %H:%M"), d.ts,
                        b.open, b.high, b.low, b.close, b.volume, b.complete]
    for m in MODULE_ORDER:
        o = d.outputs[m]
        cells += [o.status.value, o.vote.side.value if o.vote else "", o.vote.confidence if o.vote else "",
                  o.size_multiplier, o.regime, ";".join(v.scope for v in o.vetoes),
                  ";".join(a.kind if a.qty is None and a.pct is None else f"{a.kind}:{a.pct or a.qty}"
                           for a in o.actions), o.reason]
    for _, m, key in VALUE_COLUMNS:
        cells.append(d.outputs[m].values.get(key))
    c, i = d.combined, d.intent
    fraction = i.size_fraction if i.kind == "ENTER" else None
    cells += [c.side.value if c.side else "NONE", c.confidence, c.buy, c.sell, c.total, c.reason, i.kind,
              i.reason, fraction, equity * fraction if (equity is not None and fraction is not None) else None]
    return [_cell(x) for x in cells]


def detect_interval(path: Path) -> int:
    """Spacing of the first two candles (files of any name)."""
    first = [c.open_ms for c in itertools.islice(iter_candles(path, MINUTE_MS), 2)]
    if len(first) < 2 or first[1] - first[0] not in TF_BY_MS:
        raise ValueError(f"{path}: cannot tell the candle interval from its first rows")
    return first[1] - first[0]


def count_rows(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return sum(1 for _ in fh) - 1


@dataclass
class SignalsSummary:
    candles: int = 0
    decisions: int = 0
    rejected: int = 0
    interval: str = ""
    sides: Counter = field(default_factory=Counter)
    intents: Counter = field(default_factory=Counter)
    statuses: dict[str, Counter] = field(default_factory=dict)


def run_signals(modules: ModulesConfig, data: Path, out: Path, *, dvol: Path | None = None,
                equity: float | None = None, market: str = "binance:BTCUSDT",
                on_progress: Callable[[int], None] | None = None) -> SignalsSummary:
    """Feed every candle of `data` (1m or a higher interval) to one SignalEngine; write each Decision."""
    interval_ms = detect_interval(data)
    engine = SignalEngine(modules, market=market, base_interval=TF_BY_MS[interval_ms],
                          dvol_history=load_dvol(dvol) if dvol else ())
    summary = SignalsSummary(interval=TF_BY_MS[interval_ms],
                             statuses={m: Counter() for m in MODULE_ORDER})
    candles: Iterator[Candle] = iter_candles(data, interval_ms)
    n = 0
    with open(out, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header())
        for n, c in enumerate(candles, start=1):
            if equity is not None and n == 1:
                engine.update_equity(equity, c.open_ms)
            d = engine.on_candle(c)
            if on_progress is not None and n % 2000 == 0:
                on_progress(2000)
            if d is None:
                continue
            summary.decisions += 1
            summary.sides[d.combined.side.value if d.combined.side else "NONE"] += 1
            summary.intents[d.intent.kind] += 1
            for m, o in d.outputs.items():
                summary.statuses[m][o.status.value] += 1
            writer.writerow(row(d, equity))
    summary.candles = n
    summary.rejected = engine.rejected_candles
    return summary


def signals_cmd(
    config: Path = typer.Option(..., "--config", help="Engine config JSON (its `modules` section is used)."),
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="Candle CSV(.gz): 1m or 1h."),
    dvol: Path | None = typer.Option(None, "--dvol", exists=True, dir_okay=False,
                                     help="Deribit DVOL daily CSV; without it bitvol uses its proxy."),
    out: Path = typer.Option(Path("signals.csv"), "--out", help="Output CSV, one row per decision bar."),
    equity: float | None = typer.Option(None, "--equity", min=0, help="Equity for target_notional and emergency."),
) -> None:
    """Run all signal modules and the combiner over a candle file and write one row per decision bar."""
    from ate.config import load_config_or_exit

    console = Console(stderr=True)
    # offline: no venue is contacted, so the run is validated as a backtest (no API keys needed)
    cfg = load_config_or_exit(config, overrides={"mode": "backtest"})
    market = cfg.markets.primary
    try:
        total = count_rows(data)
        with Progress(TextColumn("signals"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task("signals", total=total)
            summary = run_signals(cfg.modules, data, out, dvol=dvol, equity=equity, market=market,
                                  on_progress=lambda k: progress.advance(task, k))
    except (ValueError, OSError) as exc:
        console.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    base_note = "" if INTERVAL_MS[summary.interval] == MINUTE_MS else \
        f" (base {summary.interval}: lower timeframes unavailable, multi_timeframe DEGRADED)"
    console.print(f"{summary.candles:,} candles{base_note} → {summary.decisions:,} decision rows in {out}; "
                  f"rejected {summary.rejected}", markup=False)
    console.print("decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.sides.items())), markup=False)
    console.print("intents: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.intents.items())), markup=False)
