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
from ate.config import ConfigError, config_schema, load_config

app = typer.Typer(help="ate — Active Trading Engine", no_args_is_help=True, pretty_exceptions_enable=False)
config_app = typer.Typer(help="Validate and describe engine configs.", no_args_is_help=True)
data_app = typer.Typer(help="Inspect recorded market data.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"ate {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Active Trading Engine."""


def load_or_exit(path: Path):
    """Load a config, or print one `<field.path>: <reason>` line per problem and exit 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for line in exc.problems:
            err_console.print(line, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@config_app.command("validate")
def config_validate(path: Path = typer.Argument(..., help="Config JSON file.")) -> None:
    """Exit 0 printing `ok`, or exit 2 with one `<field.path>: <reason>` line per problem."""
    load_or_exit(path)
    console.print("ok")


@config_app.command("schema")
def config_schema_cmd() -> None:
    """Print the config's JSON Schema."""
    sys.stdout.write(json.dumps(config_schema(), indent=2) + "\n")


def _utc(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


@data_app.command("info")
def data_info_cmd(path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Candle CSV(.gz) file.")) -> None:
    """Print rows, time range, interval and gaps of a candle file."""
    from ate.data.loaders import DataFormatError, data_info

    try:
        info = data_info(path)
    except DataFormatError as exc:
        err_console.print(f"{path}: {exc}", markup=False)
        raise typer.Exit(2) from None
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
