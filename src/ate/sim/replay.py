"""Replay of recorded candles and funding into the matching core.

Each candle becomes a deterministic intrabar path through four anchors a quarter interval apart:
open → the extreme nearer the open → the other extreme → close, with a spread of ``spread_bps``
around each path price (at least one tick) and a top-of-book size of ``size_fraction`` × the candle's
volume on each side (at least ``min_size``). With ``step_ms`` (the simulator passes STEP_MS, 15 s of
data), a candle longer than a minute gets a book update every ``step_ms`` along straight lines between
the anchors, so an hourly series still moves its book, trades and perp mark every 15 s like a minute
series (a 20 s mark-age limit can hold). Each path point also prints a public trade of its share of the volume; perps get a mark update
(the mid). The candle itself is published closed at its close time. Funding rows settle at their
funding times, with the file's mark when it has one.

Faults hook in here too: ``shock(m, factor, ticks)`` multiplies the next ``ticks`` replayed book
updates of a market (a spike or a drop that resting orders fill against), and ``schedule(ts, fn)``
runs ``fn()`` when the replay reaches ``ts``, in order with the data (scenario files).

The path is precomputed with numpy into typed integer arrays (``array``): indexing one gives a plain Python
int, and a year of 1m paths takes 4 bytes a price or size (int32 while the values fit) instead of a boxed
int per value (a list of ints costs ~36 bytes each); a point's time is computed from its candle's open and
close. A market nothing observes (``MatchingCore.quiet``) has each run of its events applied as their net
effect, its last book point.
"""

from __future__ import annotations

import asyncio
import heapq
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from decimal import Decimal
from operator import attrgetter

import numpy as np

from ate.data.candles import Candle
from ate.data.loaders import FundingRate
from ate.sim.clock import ManualClock, ScaledClock, SteppingClock
from ate.sim.core import Market, MatchingCore

POINTS = 4  # anchors per candle, and the fewest path points
STEP_MS = 15_000  # [ate choice] the longest gap between two path points of a candle longer than 1m


def points_per_candle(interval_ms: int, step_ms: int = STEP_MS) -> int:
    """Path points of one candle: a multiple of the four anchors, about one every ``step_ms``."""
    return max(POINTS, POINTS * round(interval_ms / (POINTS * step_ms)))


_BOOK, _CLOSE, _FUNDING, _EVENT = 1, 0, 2, 3  # close a candle before the next one's open at the same ms


Path = tuple[array, array, array, array, array]


_I32 = next(code for code in "ilh" if array(code).itemsize == 4)  # the 4-byte C int
_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1
_CHUNK = 1 << 15  # candles per numpy pass: bounds the temporaries (a year at once would peak ~180 MB higher)
_FIELDS = tuple(map(attrgetter, ("open_ms", "open", "high", "low", "close", "volume", "interval_ms")))


def book_path(m: Market, candles: Sequence[Candle], spread_bps: float, size_fraction: float,
              min_size: float, points: int = POINTS) -> Path:
    """(ts, bid ticks, ask ticks) for every path point, ``points`` per candle (a multiple of the four
    anchors), and (top-of-book size steps, trade print steps) per candle (every point of a candle has the
    same), as integer arrays: times in int64, the rest in int32 while their values fit (half the memory of
    a year's path), else int64."""
    out = [array("q"), array(_I32), array(_I32), array(_I32), array(_I32)]
    min_steps = max(1, int(np.ceil(min_size / m.step_f)))
    u = np.arange(points) * POINTS / points
    seg = u.astype(np.int64)
    frac = u - seg
    for k in range(0, len(candles), _CHUNK):
        part = candles[k:k + _CHUNK]
        n = len(part)
        # one column per field, straight from the candles (no row tuples in between)
        open_ms, o, h, lo, c, v, interval = (np.fromiter(map(get, part), np.float64, n) for get in _FIELDS)
        high_first = (h - o) <= (o - lo)
        first = np.where(high_first, h, lo)
        second = np.where(high_first, lo, h)
        anchors = np.stack([o, first, second, c, c], axis=1)  # the last quarter holds the close
        px = (anchors[:, seg] + (anchors[:, seg + 1] - anchors[:, seg]) * frac).reshape(-1)
        ts = _point_times(open_ms.astype(np.int64), interval.astype(np.int64), points)
        mid_t = np.rint(px / m.tick_f).astype(np.int64)
        spread_t = np.maximum(1, np.rint(px * spread_bps / 1e4 / m.tick_f)).astype(np.int64)
        bid_t = mid_t - spread_t // 2
        ask_t = bid_t + spread_t
        size = np.maximum(min_steps, np.floor(v * size_fraction / m.step_f)).astype(np.int64)
        vol = np.floor(v / points / m.step_f).astype(np.int64)
        for col, values in enumerate((ts, bid_t, ask_t, size, vol)):
            if out[col].typecode == _I32 and len(values) and (values.min() < _I32_MIN or values.max() > _I32_MAX):
                out[col] = array("q", out[col])  # widen: a value of this chunk needs 64 bits
            width = np.int32 if out[col].typecode == _I32 else np.int64
            out[col].frombytes(np.ascontiguousarray(values, dtype=width).tobytes())
    return out[0], out[1], out[2], out[3], out[4]


def _point_times(open_ms: np.ndarray, interval_ms: np.ndarray, points: int) -> np.ndarray:
    """The time of each path point: its candle's open plus its share of the interval, whole ms (``_point_ms``)."""
    return (open_ms[:, None] + interval_ms[:, None] * np.arange(points) // points).reshape(-1)


class _Feed:
    __slots__ = ("idx", "market", "candles", "open_ms", "close_ms", "unordered", "stop", "bid", "ask", "size", "vol",
                 "i", "closed", "funding", "fi", "points")

    def __init__(self, idx: int, market: Market) -> None:
        self.idx = idx
        self.market = market
        self.closed = 0
        self.candles: list[Candle] = []
        self.open_ms = array("q")  # per candle: the points' times are computed from these (``_point_ms``)
        self.close_ms = array("q")
        self.unordered = array("q")  # candles whose events are out of (time, kind) order: never skimmed
        self.stop = 0  # the first of them not yet closed (the number of candles if none)
        self.bid = self.ask = self.size = self.vol = array("q")
        self.i = 0
        self.funding: list[FundingRate] = []
        self.fi = 0
        self.points = POINTS


def _point_ms(f: _Feed, p: int) -> int:
    """The time of the feed's path point ``p``, as ``book_path`` computes it (a year of 1m points held as times
    would cost 16 MB)."""
    k, w = divmod(p, f.points)
    start = f.open_ms[k]
    return start + (f.close_ms[k] - start) * w // f.points


def _unordered(ts: array, close_ms: array, points: int) -> array:
    """Indices of the candles whose events are not in (time, kind) order: its points going back, its close
    not after its last point, or the next candle's first point before it (overlapping data)."""
    t = np.frombuffer(ts, dtype=np.int64).reshape(-1, points) if len(ts) else np.zeros((0, points), np.int64)
    c = np.frombuffer(close_ms, dtype=np.int64) if len(close_ms) else np.zeros(0, np.int64)
    ok = np.all(t[:, 1:] >= t[:, :-1], axis=1) & (t[:, -1] < c)
    ok[:-1] &= c[:-1] <= t[1:, 0]
    return array("q", np.flatnonzero(~ok).astype(np.int64).tobytes())


class Replayer:
    """Merges every market's path, candle closes and funding in time order and applies them.

    ``advance_to(ts)`` applies everything up to ``ts``; a ManualClock or SteppingClock (tests, and the
    as-fast-as-possible mode) is moved to each event's time as it is applied. ``run()`` follows a
    ScaledClock.
    """

    def __init__(self, core: MatchingCore, clock: ManualClock | SteppingClock | ScaledClock) -> None:
        self.core = core
        self.clock = clock
        self._feeds: list[_Feed] = []
        self._by_market: dict[tuple[str, str], _Feed] = {}
        self._heap: list[tuple[int, int, int]] = []  # (ts, kind, feed index)
        self.funding_all: dict[tuple[str, str], list[FundingRate]] = {}
        self._events: list[Callable[[], None]] = []
        self.shocks: dict[tuple[str, str], list] = {}  # market key -> [factor, book updates left]

    def schedule(self, ts_ms: int, fn: Callable[[], None]) -> None:
        """Run ``fn()`` when the replay reaches ``ts_ms`` (after the data of that ms)."""
        self._events.append(fn)
        heapq.heappush(self._heap, (ts_ms, _EVENT, len(self._events) - 1))

    def shock(self, m: Market, factor: float, ticks: int) -> None:
        """Multiply the prices of the market's next ``ticks`` replayed book updates by ``factor``."""
        if factor <= 0 or ticks < 1:
            raise ValueError("a shock needs factor > 0 and ticks >= 1")
        self.shocks[m.key] = [factor, ticks]

    def funding_history(self, m: Market, until_ms: int) -> list[FundingRate]:
        """Funding rows of the market settled at or before ``until_ms``."""
        return [r for r in self.funding_all.get(m.key, ()) if r.ts_ms <= until_ms]

    def _feed(self, m: Market) -> _Feed:
        f = self._by_market.get(m.key)
        if f is None:
            f = self._by_market[m.key] = _Feed(len(self._feeds), m)
            self._feeds.append(f)
        return f

    def add_candles(self, m: Market, candles: Sequence[Candle], *, spread_bps: float = 1.0,
                    size_fraction: float = 0.1, min_size: float = 0.0, step_ms: int | None = None) -> None:
        """``step_ms``: the path's longest step in the candles' time (the simulator passes STEP_MS, shrunk
        in the wall mode); None keeps the four anchors only (backtests: one update a quarter candle). A list
        is replayed as it is, not copied (a year of 1m candles is 4 MB of references): leave it unchanged."""
        f = self._feed(m)
        f.candles = candles if isinstance(candles, list) else list(candles)
        f.points = points_per_candle(f.candles[0].interval_ms, step_ms) if f.candles and step_ms else POINTS
        ts, f.bid, f.ask, f.size, f.vol = book_path(m, f.candles, spread_bps, size_fraction, min_size, f.points)
        f.open_ms = array("q", [c.open_ms for c in f.candles])
        f.close_ms = array("q", [c.close_ms for c in f.candles])
        f.unordered = _unordered(ts, f.close_ms, f.points)
        f.stop = f.unordered[0] if f.unordered else len(f.close_ms)
        f.i = f.closed = 0
        self._push(f)

    def add_funding(self, m: Market, rates: Sequence[FundingRate], start_ms: int | None = None) -> None:
        """Settle the rates at their times from ``start_ms`` (default: the market's first path point);
        earlier rows stay available as history (``funding_history``)."""
        f = self._feed(m)
        start = start_ms if start_ms is not None else (f.open_ms[0] if f.open_ms else None)
        self.funding_all[m.key] = sorted(rates, key=lambda r: r.ts_ms)
        f.funding = [r for r in self.funding_all[m.key] if start is None or r.ts_ms >= start]
        f.fi = 0
        if f.funding:
            self._announce(f)
            heapq.heappush(self._heap, (f.funding[0].ts_ms, _FUNDING, f.idx))

    def _push(self, f: _Feed) -> None:
        entry = self._next(f)
        if entry is not None:
            heapq.heappush(self._heap, entry)

    @staticmethod
    def _next(f: _Feed) -> tuple[int, int, int] | None:
        """The feed's next path event (a book point or a candle close), or None at the end of its data."""
        i = f.i
        if i > 0 and i % f.points == 0 and f.closed < i // f.points:
            return f.close_ms[f.closed], _CLOSE, f.idx
        if i < len(f.open_ms) * f.points:
            return _point_ms(f, i), _BOOK, f.idx
        return None

    @property
    def next_ms(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def _announce(self, f: _Feed) -> None:
        if f.fi < len(f.funding):
            nxt = f.funding[f.fi]
            self.core.set_funding(f.market, nxt.rate, nxt.ts_ms)

    def _apply(self, kind: int, idx: int) -> None:
        """A scheduled event or a funding settlement."""
        if kind == _EVENT:
            self._events[idx]()
            return
        f = self._feeds[idx]
        m = f.market
        r = f.funding[f.fi]
        self.core.settle_funding(m.venue, m.symbol, r.ts_ms, r.rate, r.mark_price)
        f.fi += 1
        self._announce(f)
        if f.fi < len(f.funding):
            heapq.heappush(self._heap, (f.funding[f.fi].ts_ms, _FUNDING, idx))

    def _shocked(self, m: Market, bid: int, ask: int) -> tuple[int, int]:
        shock = self.shocks[m.key]
        shock[1] -= 1
        if shock[1] == 0:
            del self.shocks[m.key]
        shocked = max(1, round(bid * shock[0]))
        return shocked, shocked + (ask - bid)

    def advance_to(self, ts_ms: int) -> int:
        """Apply every event at or before ``ts_ms``; returns how many were applied."""
        heap = self._heap
        manual = None if isinstance(self.clock, ScaledClock) else self.clock
        n = 0
        while heap and heap[0][0] <= ts_ms:
            ts, kind, idx = heapq.heappop(heap)
            if kind >= _FUNDING:  # _FUNDING or _EVENT: they queue their own successors
                if manual is not None and ts > manual.now_ms():
                    manual.set(ts)
                self._apply(kind, idx)
                n += 1
                continue
            n += self._run_feed(self._feeds[idx], ts, kind, ts_ms, manual)
        if manual is not None and ts_ms > manual.now_ms():
            manual.set(ts_ms)
        return n

    def _run_feed(self, f: _Feed, ts: int, kind: int, ts_ms: int, manual: ManualClock | SteppingClock | None) -> int:
        """Apply the feed's book points and candle closes from (ts, kind) on, without the heap, for as long as
        its next event is due by ``ts_ms`` and before anything queued (the order is exactly the heap's: (ts,
        kind, feed)); events its callbacks schedule are queued and so are seen here. Returns how many."""
        m = f.market
        if self.core.quiet(m) and not (self.shocks and m.key in self.shocks):
            if f.stop < f.closed:
                k = bisect_left(f.unordered, f.closed)
                f.stop = f.unordered[k] if k < len(f.unordered) else len(f.close_ms)
            if f.stop > f.closed:  # the run starts in a candle in order
                return self._skim(f, ts_ms, manual, f.stop)
        return self._each(f, ts, kind, ts_ms, manual)

    def _each(self, f: _Feed, ts: int, kind: int, ts_ms: int, manual: ManualClock | SteppingClock | None) -> int:
        """``_run_feed`` applying each event in turn."""
        heap, core, m = self._heap, self.core, f.market
        points, bar, idx = f.points, m.bar, f.idx
        n = 0
        while True:
            if manual is not None and ts > manual.now_ms():
                manual.set(ts)
            if kind == _CLOSE:
                core.close_candle(m, f.candles[f.closed])
                f.closed += 1
            else:
                i = f.i
                k, within = divmod(i, points)
                bid, ask = f.bid[i], f.ask[i]
                if self.shocks and m.key in self.shocks:
                    bid, ask = self._shocked(m, bid, ask)
                mid = (bid + ask) // 2
                if within == 0:
                    bar[0], bar[1], bar[2], bar[3] = f.open_ms[k], mid, mid, mid
                elif mid > bar[2]:
                    bar[2] = mid
                elif mid < bar[3]:
                    bar[3] = mid
                size = f.size[k]
                core.update_book(m, bid, ask, size, size, ts)
                core.record_trade(m, mid, f.vol[k], i % 2 == 0, ts)
                if m.is_perp:
                    core.update_mark(m, ts, Decimal(bid + ask) * m.tick / 2)
                f.i = i + 1
            n += 1
            i = f.i  # the feed's next event: a candle close once its points are applied, else its next point
            if i > 0 and i % points == 0 and f.closed < i // points:
                ts, kind = f.close_ms[f.closed], _CLOSE
            elif i < len(f.open_ms) * points:
                ts, kind = _point_ms(f, i), _BOOK
            else:
                return n
            if ts > ts_ms or (heap and heap[0] < (ts, kind, idx)):
                heapq.heappush(heap, (ts, kind, idx))
                return n

    def _skim(self, f: _Feed, ts_ms: int, manual: ManualClock | SteppingClock | None, stop: int) -> int:
        """``_run_feed`` for a quiet market (``MatchingCore.quiet``) up to candle ``stop``, the first whose
        events are out of order (then ``_each`` takes over): the same run of events (those before anything
        queued and due by ``ts_ms``, a prefix of the feed's as they are in order), applied as their net
        effect: the closed candles, then the last book point (``jump_book``) with the replayed candle's bar
        so far and, on a perp, its mark. Nothing can observe the points in between."""
        heap, points = self._heap, f.points
        point_lim = close_lim = ts_ms
        if heap and heap[0][0] <= ts_ms:  # something queued is due first: stop before it, ties by (kind, feed)
            lim_ts, kind, idx = heap[0]
            point_lim = lim_ts if (_BOOK, f.idx) < (kind, idx) else lim_ts - 1
            close_lim = lim_ts if (_CLOSE, f.idx) < (kind, idx) else lim_ts - 1
        i = f.i
        n = min(len(f.open_ms), stop) * points
        j = i + points  # usually one candle's points are due: check that guess before scanning
        t = _point_ms(f, j - 1) if j <= n else point_lim + 1
        if not (t <= point_lim and (j == n or _point_ms(f, j) > point_lim)):
            j = i
            while j < n and _point_ms(f, j) <= point_lim:
                j += 1
            t = _point_ms(f, j - 1) if j > i else 0
        c0, c1 = f.closed, j // points
        if c1 > c0 and j % points == 0 and f.close_ms[c1 - 1] > close_lim:
            c1 -= 1
        core, m = self.core, f.market
        last = 0
        if c1 > c0:
            for k in range(c0, c1):
                core.close_candle(m, f.candles[k])
            last = f.close_ms[c1 - 1]
        if j > i:
            p = j - 1
            k, within = divmod(p, points)
            bid, ask = f.bid[p], f.ask[p]
            bids, asks, bar = f.bid, f.ask, m.bar
            first = p - within  # the candle's first point: in this run, it opens a new bar
            if first >= i:
                hi = lo = bar[1] = (bids[first] + asks[first]) // 2
                bar[0] = f.open_ms[k]
                q = first + 1
            else:
                hi, lo, q = bar[2], bar[3], i
            while q <= p:
                x = (bids[q] + asks[q]) // 2
                if x > hi:
                    hi = x
                elif x < lo:
                    lo = x
                q += 1
            bar[2], bar[3] = hi, lo
            mid = (bid + ask) // 2
            size = f.size[k]
            core.jump_book(m, bid, ask, size, size, t, j - i, mid)
            if m.is_perp:
                core.update_mark(m, t, Decimal(bid + ask) * m.tick / 2)
            if t > last:
                last = t
        if manual is not None and last > manual.now_ms():
            manual.set(last)
        f.i, f.closed = j, c1
        applied = j - i + c1 - c0
        if j > 0 and j % points == 0 and c1 < j // points:
            heapq.heappush(heap, (f.close_ms[c1], _CLOSE, f.idx))
        elif j < n:
            heapq.heappush(heap, (_point_ms(f, j), _BOOK, f.idx))
        elif j < len(f.open_ms) * points:  # at the candle out of order: apply it (and on) one by one, if due now
            t = _point_ms(f, j)
            if t <= point_lim:
                return applied + self._each(f, t, _BOOK, ts_ms, manual)
            heapq.heappush(heap, (t, _BOOK, f.idx))
        return applied

    def run_all(self) -> int:
        """Replay everything as fast as possible."""
        return self.advance_to(1 << 62)

    async def run(self) -> None:
        """Follow the clock until the data ends: ScaledClock sleeps, a manual clock runs flat out."""
        while self._heap:
            nxt = self._heap[0][0]
            if isinstance(self.clock, ScaledClock):
                wait = self.clock.wall_seconds_until(nxt)
                if wait > 0:
                    await asyncio.sleep(min(wait, 0.5))
                    continue
                self.advance_to(self.clock.now_ms())
            else:
                self.advance_to(nxt)
                await asyncio.sleep(0)
