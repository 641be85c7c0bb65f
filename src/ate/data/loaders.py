"""Loaders for the recorded data formats in ../shared/data and data/ (see their README)."""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from ate.data.candles import MINUTE_MS, Candle

CANDLE_HEADER = ["open_time_ms", "open", "high", "low", "close", "volume"]


class DataFormatError(ValueError):
    pass


def parse_date(text: str) -> int:
    """`YYYY-MM-DD` or an ISO timestamp (UTC unless it says otherwise) → epoch ms."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise DataFormatError(f"{text!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _open_text(path: Path):
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else open(path, newline="")


def infer_interval_ms(path: Path, first_two: list[int]) -> int:
    for token, ms in (("_1m", MINUTE_MS), ("_1h", 3_600_000), ("_1d", 86_400_000)):
        if token + "." in path.name or token + "_" in path.name:
            return ms
    if len(first_two) == 2:
        return first_two[1] - first_two[0]
    return MINUTE_MS


def iter_candles(path: str | Path, interval_ms: int | None = None) -> Iterator[Candle]:
    """Stream candles from a gzip CSV `open_time_ms,open,high,low,close,volume`."""
    path = Path(path)
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != CANDLE_HEADER:
            raise DataFormatError(f"{path}: header {header!r}, expected {CANDLE_HEADER!r}")
        if interval_ms is None:
            interval_ms = infer_interval_ms(path, [])
        for lineno, row in enumerate(reader, start=2):
            try:
                yield Candle(int(row[0]), float(row[1]), float(row[2]), float(row[3]), float(row[4]),
                             float(row[5]), interval_ms)
            except (ValueError, IndexError) as exc:
                raise DataFormatError(f"{path}:{lineno}: {exc}") from exc


def load_candles(path: str | Path, interval_ms: int | None = None,
                 start_ms: int | None = None, end_ms: int | None = None) -> list[Candle]:
    """All candles of a file, optionally restricted to open times in [start_ms, end_ms)."""
    out = []
    for c in iter_candles(path, interval_ms):
        if start_ms is not None and c.open_ms < start_ms:
            continue
        if end_ms is not None and c.open_ms >= end_ms:
            break
        out.append(c)
    return out


@dataclass(frozen=True, slots=True)
class FundingRate:
    ts_ms: int
    symbol: str
    rate: Decimal
    mark_price: Decimal | None


def load_funding(path: str | Path) -> list[FundingRate]:
    """Funding history `funding_time_ms,symbol,funding_rate,mark_price` (mark may be empty)."""
    path = Path(path)
    out = []
    with _open_text(path) as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            mark = row.get("mark_price") or ""
            out.append(FundingRate(int(row["funding_time_ms"]), row["symbol"], Decimal(row["funding_rate"]),
                                   Decimal(mark) if mark else None))
    return out


@dataclass(frozen=True, slots=True)
class DvolPoint:
    day_open_ms: int
    close: float


def load_dvol(path: str | Path) -> list[DvolPoint]:
    """Deribit DVOL daily closes `date,day_open_time_ms,dvol_close,sources`."""
    path = Path(path)
    with _open_text(path) as fh:
        return [DvolPoint(int(r["day_open_time_ms"]), float(r["dvol_close"])) for r in csv.DictReader(fh)]


@dataclass(frozen=True, slots=True)
class DataInfo:
    rows: int
    first_ms: int | None
    last_ms: int | None
    interval_ms: int | None
    gaps: list[tuple[int, int]]  # (last open before the gap, first open after it)

    @property
    def missing(self) -> int:
        if not self.interval_ms:
            return 0
        return sum((b - a) // self.interval_ms - 1 for a, b in self.gaps)


# The time column of each recorded format `ate data info` describes, by its header.
_TIME_COLUMN = {tuple(CANDLE_HEADER): 0, ("funding_time_ms", "symbol", "funding_rate", "mark_price"): 0,
                ("date", "day_open_time_ms", "dvol_close", "sources"): 1}


def _times(path: Path) -> list[int]:
    """The time column of a candle, funding or DVOL file; DataFormatError for anything else or damage."""
    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh)
            header = tuple(next(reader, None) or ())
            col = _TIME_COLUMN.get(header)
            if col is None:
                raise DataFormatError(f"{path}: header {list(header)!r} is not a candle, funding or DVOL file")
            out = []
            for lineno, row in enumerate(reader, start=2):
                try:
                    out.append(int(row[col]))
                except (ValueError, IndexError) as exc:
                    raise DataFormatError(f"{path}:{lineno}: {exc}") from None
            return out
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile) and exc.errno is not None:
            raise
        raise DataFormatError(f"{path}: damaged file ({type(exc).__name__}: {exc})") from None


def data_info(path: str | Path) -> DataInfo:
    """Rows, time range and gaps of a candle, funding or DVOL file; the interval is the most common spacing."""
    opens = _times(Path(path))
    if len(opens) < 2:
        return DataInfo(len(opens), opens[0] if opens else None, opens[-1] if opens else None, None, [])
    diffs: dict[int, int] = {}
    for a, b in zip(opens, opens[1:], strict=False):
        diffs[b - a] = diffs.get(b - a, 0) + 1
    step = max(diffs, key=diffs.__getitem__)
    gaps = [(a, b) for a, b in zip(opens, opens[1:], strict=False) if b - a != step]
    return DataInfo(len(opens), opens[0], opens[-1], step, gaps)
