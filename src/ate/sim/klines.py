"""Klines of every interval the venues serve, from a market's candles of any resolution.

A market's candles mix resolutions: warm-up ``history`` (often 1h) then the replayed ``data`` (often
1m), and in the wall clock mode each lasts ``interval / speed``. A row of interval ``I`` is the bucket
``[start, end)`` of ``I`` (epoch-aligned; weeks from Monday 00:00 UTC; ``1M`` calendar months) built
from every candle opening in it whose own length fits in ``I``. A coarser candle cannot be split, so
it makes no row of a finer interval: nothing is synthesised. Every row is exactly ``I`` long.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from ate.data.candles import Candle
from ate.model import to_decimal
from ate.sim.replay import POINTS

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
MONTH = "1M"
_MONDAY = 4 * DAY  # 1970-01-05 00:00 UTC, the first Monday after the epoch

# Fixed-length intervals; "1M" (calendar month) is handled apart.
FIXED_MS = {"1s": SECOND, "1m": MINUTE, "3m": 3 * MINUTE, "5m": 5 * MINUTE, "15m": 15 * MINUTE,
            "30m": 30 * MINUTE, "1h": HOUR, "2h": 2 * HOUR, "4h": 4 * HOUR, "6h": 6 * HOUR, "8h": 8 * HOUR,
            "12h": 12 * HOUR, "1d": DAY, "3d": 3 * DAY, "1w": WEEK}
BINANCE_SPOT = tuple(FIXED_MS) + (MONTH,)
BINANCE_USDM = tuple(i for i in BINANCE_SPOT if i != "1s")
BACKPACK = {i: i for i in BINANCE_USDM if i != MONTH} | {"1month": MONTH}  # Backpack name -> interval
BACKPACK_WS = {"1s": "1s"} | BACKPACK  # the kline streams also come in 1s


def on_grid(x: float, grid: Decimal) -> Decimal:
    """A candle value (float from the data's text) rounded to the symbol's grid, written with the grid's
    decimals (a 0.10 tick gives ``105459.70``)."""
    return ((to_decimal(round(x, 12)) / grid).to_integral_value() * grid).quantize(grid)


def trade_count(c: Candle) -> int:
    """The replay prints at least POINTS public trades per candle (more for candles longer than a
    minute, see ate.sim.replay)."""
    return POINTS * c.n_base


def taker_buy_volume(c: Candle) -> float:
    """Half the replayed path's trades have a buyer taker: half the volume."""
    return c.volume / 2


def bucket(ts_ms: int, interval: str) -> tuple[int, int]:
    """``(start, end)`` of the bucket of ``interval`` holding ``ts_ms``."""
    if interval == MONTH:
        d = datetime.fromtimestamp(ts_ms / 1000, UTC)
        start = datetime(d.year, d.month, 1, tzinfo=UTC)
        end = datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=UTC)
        return int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    span = FIXED_MS[interval]
    start = ts_ms - (ts_ms - _MONDAY) % WEEK if interval == "1w" else ts_ms - ts_ms % span
    return start, start + span


def klines(candles: Sequence[Candle], interval: str, start_ms: int | None = None, end_ms: int | None = None,
           *, closed_by: int | None = None) -> list[Candle]:
    """Rows of ``interval`` for the buckets that hold candles opening in ``[start_ms, end_ms]``, oldest
    first; ``candles`` are closed candles sorted by open time. With ``closed_by`` a bucket that has
    not ended by then (still forming) is left out."""
    lo = 0 if start_ms is None else bisect.bisect_left(candles, bucket(start_ms, interval)[0], key=lambda c: c.open_ms)
    hi = len(candles) if end_ms is None else bisect.bisect_right(candles, end_ms, key=lambda c: c.open_ms)
    out: list[Candle] = []
    end = -1
    for c in candles[lo:hi]:
        if c.open_ms >= end:
            first, end = bucket(c.open_ms, interval)
            if c.interval_ms > end - first:
                end = -1  # a candle coarser than the interval: no row from it
                continue
            out.append(Candle(first, c.open, c.high, c.low, c.close, c.volume, end - first, 1))
            continue
        if c.interval_ms > end - out[-1].open_ms:
            continue
        b = out[-1]
        out[-1] = Candle(b.open_ms, b.open, max(b.high, c.high), min(b.low, c.low), c.close, b.volume + c.volume,
                         b.interval_ms, b.n_base + 1)
    if closed_by is not None:
        while out and out[-1].close_ms > closed_by:
            out.pop()
    return out
