"""The risk layer's CLI commands: ``ate kill``, ``ate resume``, ``ate promote`` and ``ate close-all``.

``ate close-all --yes`` also persists HALTED, so an engine that is running (or restarts) does not re-open
what was just closed.

CLI glue: unlike the rest of ``ate.risk`` (model and config only), these open the store and, for
close-all, venue clients, because they must work when no engine process is running.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ate.model import TradingState
from ate.risk import promotion
from ate.risk.killswitch import kill_file, write_kill_file
from ate.risk.state import read_state, write_state

console = Console(soft_wrap=True)
CONFIG_OPT = typer.Option(None, "--config", "-c", help="Engine config JSON (defaults apply without one).")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _config(path: Path | None, *, require_keys: bool = False):
    """The config, or exit 2 with one line per problem. Keys are only required where a venue is called:
    an emergency command must not fail because an API key variable is unset."""
    from ate.config import EngineConfig, load_config_or_exit

    return EngineConfig() if path is None else load_config_or_exit(path, require_keys=require_keys)


def _store(cfg):
    from ate.store import Store

    return Store(cfg.store.url)


def kill_cmd(reason: str = typer.Option("operator kill", "--reason", "-r", help="Why (logged)."),
             config: Path | None = CONFIG_OPT) -> None:
    """HALT trading: write the EMERGENCY_STOP file and persist HALTED. Works with or without a running engine."""
    cfg = _config(config)
    now = _now_ms()
    path = kill_file(cfg.kill_switch)
    write_kill_file(path, reason, "cli", now)
    store = _store(cfg)
    try:
        write_state(store, TradingState.HALTED, "cli", reason, now)
    finally:
        store.close()
    console.print(f"HALTED: wrote {path} and persisted HALTED in {cfg.store.url}. "
                  "A running engine cancels all open orders within one poll. Leave with `ate resume`.")


def resume_cmd(config: Path | None = CONFIG_OPT) -> None:
    """Leave HALTED: persist ACTIVE and remove the EMERGENCY_STOP file; a running engine follows."""
    cfg = _config(config)
    path = kill_file(cfg.kill_switch)
    store = _store(cfg)
    try:
        before = read_state(store)["state"]
        path.unlink(missing_ok=True)
        write_state(store, TradingState.ACTIVE, "cli", "resume", _now_ms())
    finally:
        store.close()
    console.print(f"ACTIVE (was {before}); removed {path}.")


def promote_cmd(config: Path = typer.Option(..., "--config", "-c", help="Engine config JSON."),
                check: bool = typer.Option(False, "--check", help="Only report the gates; change nothing."),
                as_json: bool = typer.Option(False, "--json", help="Print the gates and the verdict as JSON.")) -> None:
    """Check the promotion gates of the next capital stage and move up if every one passes."""
    cfg = _config(config)
    store = _store(cfg)
    try:
        now = _now_ms()
        report = (promotion.evaluate(store, cfg.capital_stages, now) if check
                  else promotion.promote(store, cfg.capital_stages, now, "cli"))
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps({
            "current": report.current, "target": report.target, "check": check, "eligible": report.eligible,
            "promoted": report.eligible and not check,
            "gates": [{"gate": g.name, "measured": g.measured, "required": g.required, "passed": g.passed}
                      for g in report.gates],
            "reasons": [] if report.eligible else report.reasons, "advice": report.advice}, indent=2))
        if not report.eligible:
            raise typer.Exit(1)
        return
    table = Table(title=f"promotion {report.current} → {report.target or '(none)'}")
    for col in ("gate", "measured", "required", "result"):
        table.add_column(col)
    for g in report.gates:
        table.add_row(g.name, g.measured, g.required, "PASS" if g.passed else "FAIL")
    console.print(table)
    console.print(f"profit withdrawal (advice only): {report.advice}")
    if not report.eligible:
        console.print("not eligible: " + "; ".join(report.reasons) if check else
                      "refused: " + "; ".join(report.reasons))
        raise typer.Exit(1)
    console.print(f"eligible for {report.target}" if check else
                  f"promoted to {report.target}; run the engine with mode live to trade it")


TRADING_VENUES = ("binance", "binance_usdm", "backpack")


def close_all_cmd(config: Path = typer.Option(..., "--config", "-c", help="Engine config JSON."),
                  venue: list[str] = typer.Option([], "--venue", "-v",
                                                  help="Only these venues (binance, binance_usdm, backpack)."),
                  yes: bool = typer.Option(False, "--yes", help="Execute; without it, only list what would be done.")
                  ) -> None:
    """Cancel every open order and close every position, reduce-only. Needs no running engine."""
    cfg = _config(config, require_keys=True)
    unknown = sorted(set(venue) - set(TRADING_VENUES))
    if unknown:
        typer.echo(f"--venue: unknown venue(s) {', '.join(unknown)}; choose from {', '.join(TRADING_VENUES)}",
                   err=True)
        raise typer.Exit(2)
    if not asyncio.run(close_all(cfg, set(venue) or set(TRADING_VENUES), yes)):
        raise typer.Exit(1)


async def close_all(cfg, venues: set[str], yes: bool, *, clock=None) -> bool:
    """The body of ``ate close-all``; ``clock`` (``ate.venues.clock.Clock``) is the venue clients' clock."""
    from ate.risk.capital import limits_from_config
    from ate.risk.closeall import execute_close_all, plan_close_all
    from ate.venues.factory import build_clients

    clients = {k: c for k, c in build_clients(cfg.venues, clock=clock).items() if k in venues}
    store = _store(cfg)
    try:
        for c in clients.values():
            await c.start()
        plan = await plan_close_all(clients, store, limits_from_config(cfg), _now_ms)
        for line in plan.lines() or ["nothing to cancel or close"]:
            console.print(line, markup=False, highlight=False)
        if not yes:
            console.print("dry run: nothing was sent; add --yes to execute")
            return True
        write_state(store, TradingState.HALTED, "cli", "close-all", _now_ms())
        result = await execute_close_all(plan, clients, store, cfg.run_id, _now_ms)
        for line in result.errors:
            console.print(f"ERROR {line}", markup=False, highlight=False)
        console.print(f"canceled {len(result.canceled)}, closed {len(result.closed)}, errors {len(result.errors)}; "
                      "trading state HALTED (leave with `ate resume`)")
        return not result.errors
    finally:
        for c in clients.values():
            await c.close()
        store.close()
