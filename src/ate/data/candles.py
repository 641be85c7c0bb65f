"""Candles and the epoch-aligned time-bucket aggregator (signals-and-strategies.md §1)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MINUTE_MS = 60_000
INTERVAL_MS = {
    "1m": MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "1d": 1440 * MINUTE_MS,
}


@dataclass(frozen=True, slots=True)
class Candle:
    """A closed candle keyed by its open time (UTC ms). Float maths: signals only, never venues."""

    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    interval_ms: int = MINUTE_MS
    n_base: int = 1
    complete: bool = True

    @property
    def close_ms(self) -> int:
        return self.open_ms + self.interval_ms


class Aggregator:
    """Folds closed base candles into one coarser timeframe.

    A bucket is emitted once: when its last base candle closes, or, if that candle never comes,
    when a candle of a later bucket arrives (then ``complete`` is False). The first bucket of the
    history is dropped if it starts mid-bucket; nothing is synthesised or forward-filled.
    """

    __slots__ = ("interval_ms", "base_ms", "_expected", "_start", "_o", "_h", "_l", "_c", "_v", "_n", "_history_started")

    def __init__(self, interval_ms: int, base_ms: int = MINUTE_MS) -> None:
        if interval_ms % base_ms:
            raise ValueError("interval must be a multiple of the base interval")
        self.interval_ms = interval_ms
        self.base_ms = base_ms
        self._expected = interval_ms // base_ms
        self._start: int | None = None
        self._history_started = False
        self._n = 0

    def update(self, c: Candle) -> tuple[Candle, ...]:
        """Add one base candle; return the buckets it finished (usually none, at most two)."""
        start = c.open_ms - c.open_ms % self.interval_ms
        out: tuple[Candle, ...] = ()
        if self._start is not None and start != self._start:
            out = self._emit()
        if self._start is None:
            if not self._history_started and c.open_ms != start:
                return out  # partial first bucket of the history: dropped
            self._history_started = True
            self._start = start
            self._o, self._h, self._l, self._c, self._v, self._n = c.open, c.high, c.low, c.close, 0.0, 0
        if c.high > self._h:
            self._h = c.high
        if c.low < self._l:
            self._l = c.low
        self._c = c.close
        self._v += c.volume
        self._n += 1
        if c.open_ms + self.base_ms == start + self.interval_ms:
            out += self._emit()
        return out

    def _emit(self) -> tuple[Candle, ...]:
        start = self._start
        assert start is not None
        self._start = None
        bar = Candle(start, self._o, self._h, self._l, self._c, self._v, self.interval_ms, self._n,
                     self._n == self._expected)
        return (bar,)


def aggregate(candles: Iterable[Candle], interval_ms: int, base_ms: int = MINUTE_MS) -> Iterator[Candle]:
    agg = Aggregator(interval_ms, base_ms)
    for c in candles:
        yield from agg.update(c)
