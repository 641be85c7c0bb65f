"""`ate data download`: the command that drives ``ate.venues.download`` with the configured venue clients
(served by an in-process simulator when the config says the venues are simulated)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ate.cli_boundary import ExitCode
from ate.data.candles import INTERVAL_MS
from ate.data.loaders import DataFormatError
from ate.venues.download import (
    VENUE_IDS,
    CandleReport,
    DownloadError,
    FundingReport,
    default_path,
    download_candles,
    download_funding,
    utc,
)


async def _download(cfg: Any, venue: str, symbol: str, interval: str, start_ms: int, end_ms: int, out: Path,
                    funding_out: Path | None, progress: Callable[[int, int], None]) -> tuple[CandleReport,
                                                                                          FundingReport | None]:
    import aiohttp

    from ate.commands.venues import resolved_venues
    from ate.venues.factory import build_clients

    async with aiohttp.ClientSession() as session, resolved_venues(cfg) as (venues, clock):
        clients = build_clients(venues, session=session, clock=clock, environ={})  # public data: no keys
        client = clients.get(VENUE_IDS[venue])
        if client is None:
            raise DownloadError(f"--venue {venue}: disabled in the config (venues.{venue.split('-')[0]}.enabled)")
        candles = await download_candles(client, symbol, interval, start_ms, end_ms, out, progress=progress)
        funding = await download_funding(client, symbol, start_ms, end_ms, funding_out) if funding_out else None
        return candles, funding


def download_cmd(
    venue: str = typer.Option(..., "--venue", help="binance (spot), binance-usdm or backpack."),
    symbol: str = typer.Option(..., "--symbol", help="Venue symbol, e.g. BTCUSDT or BTC_USDC."),
    interval: str = typer.Option("1h", "--interval", help="1m, 5m, 15m, 1h, 4h or 1d."),
    start: str = typer.Option(..., "--from", help="First day (YYYY-MM-DD, UTC) or an ISO time."),
    end: str = typer.Option(..., "--to", help="End (exclusive)."),
    funding: bool = typer.Option(False, "--funding", help="Also the perp's settled funding rates."),
    out_dir: Path = typer.Option(Path("data"), "--out-dir", help="Folder of the files."),
    out: Path | None = typer.Option(None, "--out", help="Candle file (default: named after the request)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Config JSON whose venue URLs to use."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Download candles (and funding) through the venue clients into files `ate backtest --data` reads.
    Resumes an interrupted download; reports rejected candles and gaps."""
    import json
    import sys

    import aiohttp
    from rich.console import Console

    from ate.config import EngineConfig, load_config_or_exit
    from ate.data.loaders import parse_date
    from ate.venues.errors import VenueError

    err = Console(stderr=True)

    def fail(message: str, code: ExitCode = ExitCode.USAGE) -> typer.Exit:
        err.print(message, markup=False, highlight=False)
        return typer.Exit(code)

    if venue not in VENUE_IDS:
        raise fail(f"--venue {venue!r}: one of {', '.join(VENUE_IDS)}")
    if interval not in INTERVAL_MS:
        raise fail(f"--interval {interval!r}: one of {', '.join(INTERVAL_MS)}")
    if funding and venue != "binance-usdm":
        raise fail(f"--funding: only binance-usdm funding history can be paged by date (not {venue})")
    try:
        start_ms, end_ms = parse_date(start), parse_date(end)
    except DataFormatError as exc:
        raise fail(f"--from/--to: {exc}") from None
    cfg = load_config_or_exit(config, require_keys=False) if config is not None else EngineConfig()
    name_from, name_to = start[:10], end[:10]
    path = out or default_path(out_dir, venue, symbol, interval, name_from, name_to)
    funding_path = out_dir / f"{VENUE_IDS[venue]}_{symbol}_funding_{name_from}_{name_to}.csv" if funding else None
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err,
                  transient=True) as prog:
        task = prog.add_task(f"{venue} {symbol} {interval}", total=end_ms - start_ms)
        try:
            candles, fund = asyncio.run(_download(cfg, venue, symbol, interval, start_ms, end_ms, path,
                                                  funding_path, lambda done, total: prog.update(task, completed=done)))
        except DownloadError as exc:
            raise fail(str(exc)) from None
        except (VenueError, aiohttp.ClientError, OSError) as exc:
            raise fail(f"{venue}: {exc} (rerun the same command to resume)", ExitCode.INCOMPLETE) from None
    step = INTERVAL_MS[interval]
    doc = {"path": str(candles.path), "rows": candles.rows, "written": candles.written,
           "resumed_from_ms": candles.resumed_from_ms, "missing": candles.missing(step),
           "gaps": [[a, b] for a, b in candles.gaps],
           "rejected": [{"open_ms": t, "reason": r} for t, r in candles.rejected],
           "funding": None if fund is None else {"path": str(fund.path), "rows": fund.rows}}
    if as_json:
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    console = Console()
    console.print(f"{candles.path}: {candles.rows:,} candles ({candles.written:,} new"
                  + (f", resumed from {utc(candles.resumed_from_ms)}" if candles.resumed_from_ms else "") + ")",
                  markup=False)
    console.print(f"gaps: {len(candles.gaps)} ({candles.missing(step):,} candles missing)", markup=False)
    for a, b in candles.gaps[:20]:
        console.print(f"  missing {utc(a)} → {utc(b)}", markup=False)
    for t, r in candles.rejected[:20]:
        console.print(f"  rejected {utc(t)}: {r}", markup=False)
    if fund is not None:
        console.print(f"{fund.path}: {fund.rows:,} funding rates", markup=False)
