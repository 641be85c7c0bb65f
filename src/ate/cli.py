"""The `ate` command. Each area keeps its command's logic in its own module; this file only wires."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ate import __version__
from ate.config import config_schema, load_config_or_exit

# No rich markup in help texts: they quote JSON and `[...]` ranges, which markup would swallow.
app = typer.Typer(help="ate — Active Trading Engine", no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None)
config_app = typer.Typer(help="Validate and describe engine configs.", no_args_is_help=True, rich_markup_mode=None)
data_app = typer.Typer(help="Inspect and download market data.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")
docs_app = typer.Typer(help="Print the generated reference pages of docs/.", no_args_is_help=True,
                       rich_markup_mode=None)
app.add_typer(docs_app, name="docs")

console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"ate {__version__}")
        raise typer.Exit()


_debug = {"on": False}


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit."),
          debug: bool = typer.Option(False, "--debug", help="Print tracebacks of failures on the terminal.")) -> None:
    """Active Trading Engine."""
    _debug["on"] = debug


@config_app.command("validate")
def config_validate(path: Path = typer.Argument(..., help="Config JSON file.")) -> None:
    """Exit 0 printing `ok`, or exit 2 with one `<field.path>: <reason>` line per problem."""
    from ate.strategies.loader import check_strategies_or_exit

    check_strategies_or_exit(load_config_or_exit(path))
    console.print("ok")


@docs_app.command("config")
def docs_config_cmd() -> None:
    """Print the configuration reference (docs/configuration.md), generated from the config schema."""
    from ate.config.reference import markdown_reference

    sys.stdout.write(markdown_reference())


@docs_app.command("cli")
def docs_cli_cmd() -> None:
    """Print the command-line reference (docs/cli.md), generated from the commands."""
    from ate.cli_reference import markdown_reference

    sys.stdout.write(markdown_reference(app))


@config_app.command("schema")
def config_schema_cmd() -> None:
    """Print the config's JSON Schema."""
    sys.stdout.write(json.dumps(config_schema(), indent=2) + "\n")


def _utc(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


@data_app.command("info")
def data_info_cmd(path: Path = typer.Argument(..., exists=True, dir_okay=False,
                                              help="Candle, funding or DVOL CSV(.gz) file.")) -> None:
    """Print rows, time range, interval and gaps of a candle, funding or DVOL file."""
    from ate.data.loaders import data_info

    info = data_info(path)  # a damaged or foreign file: DataFormatError, reported by the CLI's error boundary
    table = Table(title=str(path), show_header=False)
    table.add_row("rows", f"{info.rows:,}")
    table.add_row("first open (UTC)", _utc(info.first_ms))
    table.add_row("last open (UTC)", _utc(info.last_ms))
    table.add_row("interval", f"{info.interval_ms // 60_000} min" if info.interval_ms else "-")
    table.add_row("gaps", f"{len(info.gaps)} ({info.missing:,} bars missing)")
    console.print(table)
    for a, b in info.gaps[:20]:
        console.print(f"  gap after {_utc(a)} → next {_utc(b)}")
    if len(info.gaps) > 20:
        console.print(f"  … {len(info.gaps) - 20} more")


@app.command("dashboard")
def dashboard_cmd(config: Path = typer.Option(..., "--config", help="Config JSON file.")) -> None:
    """Serve the operator dashboard and API read-only from the store (when the engine is not running)."""
    import asyncio

    from ate.monitor.standalone import serve_store

    asyncio.run(serve_store(load_config_or_exit(config, require_keys=False)))


# data download (issue 17): candles and funding through the venue clients, into backtest files
from ate.commands.download import download_cmd  # noqa: E402

data_app.command("download")(download_cmd)


# risk layer (issue 6): kill switch, resume, capital stage promotion
from ate.commands.risk import close_all_cmd, kill_cmd, promote_cmd, resume_cmd  # noqa: E402

app.command("kill")(kill_cmd)
app.command("resume")(resume_cmd)
app.command("promote")(promote_cmd)
app.command("close-all")(close_all_cmd)


@app.command("run")
def run_cmd(
    config: Path = typer.Option(..., "--config", "-c", help="Engine config JSON."),
    mode: str | None = typer.Option(None, "--mode", help="backtest|paper|shadow|canary|live (overrides the config)."),
    paper: bool = typer.Option(False, "--paper", help="Alias of --mode paper."),
    shadow_mode: bool = typer.Option(False, "--shadow-mode", help="Alias of --mode shadow."),
    canary_mode: bool = typer.Option(False, "--canary-mode", help="Alias of --mode canary."),
    quiet: bool = typer.Option(False, "--quiet", help="No live summary."),
) -> None:
    """Run the engine until Ctrl-C or SIGTERM (graceful: positions are left as they are)."""
    import asyncio

    from ate.model import Mode

    chosen = [m for m, flag in (("paper", paper), ("shadow", shadow_mode), ("canary", canary_mode)) if flag]
    if mode:
        chosen.append(mode)
    if len(set(chosen)) > 1:
        err_console.print(f"mode: conflicting choices {sorted(set(chosen))}")
        raise typer.Exit(2)
    try:
        override = Mode(chosen[0]) if chosen else None
    except ValueError:
        err_console.print(f"mode: {chosen[0]!r} is not one of backtest, paper, shadow, canary, live")
        raise typer.Exit(2) from None
    cfg = load_config_or_exit(config, overrides={"mode": override.value} if override is not None else None)
    if cfg.mode is Mode.BACKTEST:
        err_console.print("mode: use `ate backtest` for backtests")
        raise typer.Exit(2)
    from ate.engine import run_engine
    from ate.strategies.loader import check_strategies_or_exit

    check_strategies_or_exit(cfg)

    raise typer.Exit(asyncio.run(run_engine(cfg, console=None if quiet else console)))


@app.command("status")
def status_cmd(
    config: Path = typer.Option(..., "--config", "-c", help="Engine config JSON."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Engine and trading state, modules, positions, open orders and today's P&L, from the store."""
    from ate.monitor.status import stored_status
    from ate.store import Store

    cfg = load_config_or_exit(config, require_keys=False)
    status = stored_status(Store(cfg.store.url), shadow=cfg.mode.hypothetical)
    if as_json:
        sys.stdout.write(json.dumps(status, indent=2, default=str) + "\n")
        return
    from ate.monitor.console import status_tables

    console.print(status_tables(status))


# signals (issue 5): every module + combiner over a candle file, one CSV row per decision bar
from ate.signals.report import signals_cmd  # noqa: E402

app.command("signals")(signals_cmd)

# backtest, compare, sweep (issue 8): replay through the same engine with simulated fills
from ate.backtest.commands import backtest_cmd, compare_cmd, sweep_cmd  # noqa: E402

app.command("backtest")(backtest_cmd)
app.command("compare")(compare_cmd)
app.command("sweep")(sweep_cmd)


# simulate (issue 3): the simulated exchanges behind their real wire protocols
from ate.sim.command import simulate_cmd  # noqa: E402

app.command("simulate")(simulate_cmd)


# check / ticker (issue 4): venue connectivity and live top of book
from ate.commands.venues import check_cmd, ticker_cmd  # noqa: E402

app.command("check")(check_cmd)
app.command("ticker")(ticker_cmd)


def main(argv: list[str] | None = None) -> int:
    """The `ate` entry point: every failure ends as one `error:` line and an ExitCode, never a traceback."""
    from ate.cli_boundary import run_cli
    from ate.logs import configure_logging

    configure_logging()
    _debug["on"] = False
    return run_cli(typer.main.get_command(app), argv, debug=lambda: _debug["on"])


if __name__ == "__main__":
    sys.exit(main())
