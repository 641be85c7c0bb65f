"""Candles (and perp funding) of one market from a venue client into the files `ate backtest` reads, through
the client's rate limiter, retries and parsing (`ate data download` is in ``ate.commands.download``).

Paged in chunks that are appended and flushed as they arrive, so an interrupted download resumes from the
last complete candle in the file (a truncated last line is cut off first). Every candle is validated
(finite, positive, consistent OHLC, aligned, strictly after the previous one); a rejected candle is not
written and is reported with its reason. Whatever the venue does not have (outages, listing dates) is
reported as gaps, not invented.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

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
