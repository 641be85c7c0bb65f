"""`ate data download`: candles (and perp funding) of one market from a venue into the files `ate backtest`
reads, through the venue clients (their rate limiter, retries and parsing).

Paged in chunks that are appended and flushed as they arrive, so an interrupted download resumes from the
last complete candle in the file (a truncated last line is cut off first). Every candle is validated
(finite, positive, consistent OHLC, aligned, strictly after the previous one); a rejected candle is not
written and is reported with its reason. Whatever the venue does not have (outages, listing dates) is
reported as gaps, not invented.
"""

from __future__ import annotations

import asyncio
import csv
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ate.data.candles import INTERVAL_MS, Candle
from ate.data.loaders import CANDLE_HEADER, DataFormatError, iter_candles
from ate.data.validate import check_candle

# `--venue` as written on the command line → the engine's venue id.
VENUE_IDS = {"binance": "binance", "binance-usdm": "binance_usdm", "backpack": "backpack"}
FUNDING_HEADER = ["funding_time_ms", "symbol", "funding_rate", "mark_price"]
CHUNK = 1000  # candles per request round (the clients page within it if the venue returns fewer)


class DownloadError(Exception):
    """The download cannot start or go on (bad arguments, a file that is not ours to append to)."""


@dataclass(slots=True)
class CandleReport:
    path: Path
    written: int = 0
    resumed_from_ms: int | None = None  # first open time fetched when a previous file was continued
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (open ms, reason)
    gaps: list[tuple[int, int]] = field(default_factory=list)  # [first missing open, first open after)
    rows: int = 0  # candles in the file at the end

    def missing(self, interval_ms: int) -> int:
        return sum((b - a) // interval_ms for a, b in self.gaps)


@dataclass(slots=True)
class FundingReport:
    path: Path
    written: int = 0
    rows: int = 0


def utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def default_path(out_dir: Path, venue: str, symbol: str, interval: str, start: str, end: str) -> Path:
    """Named like the shipped files (data/README.md), so the loaders infer the interval from the name."""
    stem = {"binance": f"binance_spot_{symbol}", "binance-usdm": f"binance_usdm_{symbol}_perp",
            "backpack": f"backpack_{symbol}" if symbol.endswith("_PERP") else f"backpack_spot_{symbol}"}[venue]
    return out_dir / f"{stem}_{interval}_{start}_{end}.csv"


def _fmt(x: float) -> str:
    return repr(float(x))


def _cut_partial_line(path: Path) -> None:
    """A kill during a write can leave half a row: drop everything after the last newline."""
    with open(path, "rb+") as fh:
        data = fh.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            fh.truncate(end)


def _existing(path: Path, interval_ms: int) -> list[int]:
    """Open times already in a file we may continue; DownloadError if it is not a candle file of ours."""
    if path.suffix == ".gz":
        raise DownloadError(f"{path}: downloads are written as plain .csv (compress afterwards if you like)")
    if not path.exists() or path.stat().st_size == 0:
        return []
    _cut_partial_line(path)
    try:
        opens = [c.open_ms for c in iter_candles(path, interval_ms)]
    except DataFormatError as exc:
        raise DownloadError(f"{path} exists and is not a candle file to continue: {exc}") from None
    for a, b in zip(opens, opens[1:], strict=False):
        if b <= a or (b - a) % interval_ms:
            raise DownloadError(f"{path} exists but its open times are not increasing on the {interval_ms // 60_000}m "
                                f"grid near {utc(a)}; move it away to download afresh")
    return opens


async def download_candles(client: Any, symbol: str, interval: str, start_ms: int, end_ms: int, path: Path, *,
                           chunk: int = CHUNK, progress: Callable[[int, int], None] | None = None) -> CandleReport:
    """Candles with open time in [start_ms, end_ms) appended to `path` (created with its header)."""
    if interval not in INTERVAL_MS:
        raise DownloadError(f"--interval {interval!r}: one of {', '.join(INTERVAL_MS)}")
    step = INTERVAL_MS[interval]
    if start_ms % step or end_ms % step:
        raise DownloadError(f"--from/--to must fall on the {interval} grid")
    if end_ms <= start_ms:
        raise DownloadError("--to is not after --from")
    report = CandleReport(path)
    opens = _existing(path, step)
    mine = [t for t in opens if start_ms <= t < end_ms]
    if len(mine) != len(opens):
        raise DownloadError(f"{path} holds candles outside {utc(start_ms)} → {utc(end_ms)}; "
                            "use another --out to download a different window")
    cursor = start_ms if not opens else opens[-1] + step
    if opens:
        report.resumed_from_ms = cursor
    path.parent.mkdir(parents=True, exist_ok=True)
    last: Candle | None = None
    with open(path, "a", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if not opens:
            writer.writerow(CANDLE_HEADER)
        while cursor < end_ms:
            upto = min(end_ms, cursor + chunk * step)
            batch = await client.klines(symbol, interval, cursor, upto)
            for c in batch:
                if not cursor <= c.open_ms < upto:
                    continue  # the venue answered outside the asked window: never trusted
                reason = check_candle(c, last)
                if reason is None and last is not None and c.open_ms <= last.open_ms:
                    reason = "duplicate"
                if reason is not None:
                    report.rejected.append((c.open_ms, reason))
                    continue
                writer.writerow([c.open_ms, _fmt(c.open), _fmt(c.high), _fmt(c.low), _fmt(c.close),
                                 _fmt(c.volume)])
                report.written += 1
                last = c
            fh.flush()
            os.fsync(fh.fileno())
            cursor = upto
            if progress is not None:
                progress(cursor - start_ms, end_ms - start_ms)
    final = [c.open_ms for c in iter_candles(path, step)]
    report.rows = len(final)
    report.gaps = _gaps(final, start_ms, end_ms, step)
    return report


def _gaps(opens: list[int], start_ms: int, end_ms: int, step: int) -> list[tuple[int, int]]:
    gaps, expected = [], start_ms
    for t in opens:
        if t > expected:
            gaps.append((expected, t))
        expected = t + step
    if expected < end_ms:
        gaps.append((expected, end_ms))
    return gaps


async def download_funding(client: Any, symbol: str, start_ms: int, end_ms: int, path: Path) -> FundingReport:
    """Settled funding rates in [start_ms, end_ms), written whole (a small file: 3 rows a day)."""
    rates = getattr(client, "funding_rates", None)
    if rates is None:
        raise DownloadError("--funding: this venue's client cannot page funding history by date")
    rows: list[tuple[int, Decimal, Decimal | None]] = await rates(symbol, start_ms, end_ms)
    report = FundingReport(path)
    tmp = path.with_suffix(path.suffix + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    seen: set[int] = set()
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(FUNDING_HEADER)
        for ts, rate, mark in sorted(rows, key=lambda r: r[0]):
            if ts in seen or not start_ms <= ts < end_ms or not rate.is_finite():
                continue
            seen.add(ts)
            writer.writerow([ts, symbol, format(rate, "f"), "" if mark is None else format(mark, "f")])
            report.written += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)  # all or nothing
    report.rows = report.written
    return report


async def _download(cfg: Any, venue: str, symbol: str, interval: str, start_ms: int, end_ms: int, out: Path,
                    funding_out: Path | None, progress: Callable[[int, int], None]) -> tuple[CandleReport,
                                                                                          FundingReport | None]:
    import aiohttp

    from ate.venues.check import resolved_venues
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

    def fail(message: str, code: int = 2) -> typer.Exit:
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
            raise fail(f"{venue}: {exc} (rerun the same command to resume)", 1) from None
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
