"""The market data manager: one owner for the latest book, closed candles per timeframe, funding and
mark prices, trades and DVOL of every market. Venue streams push into it (it implements the venues'
``MarketSink``); subscribers get pushes through callbacks or asyncio queues, never by polling.

Every incoming value is validated (``ate.data.validate``); one that fails is quarantined: counted by
kind and reason, kept for inspection, and not passed on. A subscriber that raises is logged with the
value it choked on and counted; the other subscribers and the stream carry on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

from ate.data.candles import INTERVAL_MS, MINUTE_MS, Aggregator, Candle
from ate.data.price_guard import PriceGuard
from ate.data.validate import check_book, check_candle, check_dvol, check_mark, check_trade
from ate.model.market import BookTicker, DepthUpdate, MarkPrice, Trade

log = logging.getLogger("ate.data.manager")

Key = tuple[str, str]  # (venue, symbol)
BOOK, CANDLE, MARK, TRADE, DEPTH, DVOL = "book", "candle", "mark", "trade", "depth", "dvol"


class MarketDataManager:
    def __init__(self, timeframes: Iterable[str] = ("5m", "15m", "1h", "4h", "1d"), *, history: int = 2000,
                 quarantine_keep: int = 100, guard: PriceGuard | None = None) -> None:
        """``guard`` judges each book's price level against confirmed prices and independent references;
        without one only a 10x jump from the last accepted book is refused."""
        self.timeframes = tuple(timeframes)
        self.guard = guard
        self.history = history
        self.books: dict[Key, BookTicker] = {}
        self.marks: dict[Key, MarkPrice] = {}
        self.trades: dict[Key, Trade] = {}
        self.dvol: dict[str, Candle] = {}
        self._candles: dict[tuple[str, str, str], deque[Candle]] = {}
        self._aggregators: dict[Key, list[tuple[str, Aggregator]]] = {}
        self.quarantined: Counter[tuple[str, str]] = Counter()
        self.quarantine_log: deque[tuple[str, str, object]] = deque(maxlen=quarantine_keep)
        self.duplicates = 0
        self.gaps = 0
        self.subscriber_errors: Counter[str] = Counter()
        self._subs: dict[str, list[Callable[..., None]]] = {k: [] for k in (BOOK, CANDLE, MARK, TRADE, DEPTH, DVOL)}

    # ---- subscriptions -----------------------------------------------------------------------------

    def subscribe(self, kind: str, callback: Callable[..., None]) -> Callable[[], None]:
        """Call ``callback`` on every accepted value of ``kind``; returns an unsubscribe function.

        Signatures: book(BookTicker), candle(venue, symbol, timeframe, Candle), mark(MarkPrice),
        trade(Trade), depth(DepthUpdate), dvol(currency, Candle)."""
        subs = self._subs[kind]
        subs.append(callback)
        return lambda: subs.remove(callback)

    def queue(self, kind: str, maxsize: int = 10_000) -> asyncio.Queue:
        """An asyncio queue receiving every accepted value of ``kind`` (as a tuple of the callback's
        arguments). When the consumer falls behind the oldest item is dropped and counted."""
        q: asyncio.Queue = asyncio.Queue(maxsize)

        def put(*args: Any) -> None:
            if q.full():
                q.get_nowait()
                self.quarantined[(kind, "subscriber_overflow")] += 1
            q.put_nowait(args)
        self.subscribe(kind, put)
        return q

    def _reject(self, kind: str, reason: str, value: object) -> None:
        self.quarantined[(kind, reason)] += 1
        self.quarantine_log.append((kind, reason, value))

    # ---- MarketSink (hot path) ---------------------------------------------------------------------

    def on_book(self, book: BookTicker) -> None:
        key = (book.venue, book.symbol)
        guard = self.guard
        reason = check_book(book, self.books.get(key), jump=guard is None)
        if reason is None and guard is not None:
            reason = guard.check(key, book.bid, book.ask, book.ts_ms)
        if reason is not None:
            self._reject(BOOK, reason, book)
            return
        self.books[key] = book
        for cb in self._subs[BOOK]:  # _call's guard inline: one call less per book on the hot path
            try:
                cb(book)
            except Exception:
                self._failed(cb, BOOK, (book,))

    def on_candle(self, venue: str, symbol: str, candle: Candle) -> None:
        """A closed 1m candle: stored, pushed, and folded into every configured timeframe."""
        series = self._series(venue, symbol, "1m")
        last = series[-1] if series else None
        if last is not None and candle.open_ms == last.open_ms:
            self.duplicates += 1  # the same candle from the stream and a backfill
            return
        reason = check_candle(candle, last)
        if reason is not None:
            self._reject(CANDLE, reason, (venue, symbol, candle))
            return
        if last is not None and candle.open_ms != last.open_ms + MINUTE_MS:
            self.gaps += 1
            log.warning("candle gap %s:%s %d -> %d", venue, symbol, last.open_ms, candle.open_ms)
        series.append(candle)
        self._push_candle(venue, symbol, "1m", candle)
        for tf, agg in self._aggregators_for(venue, symbol):
            for bar in agg.update(candle):
                self._series(venue, symbol, tf).append(bar)
                self._push_candle(venue, symbol, tf, bar)

    def on_mark(self, mark: MarkPrice) -> None:
        key = (mark.venue, mark.symbol)
        reason = check_mark(mark, self.marks.get(key))
        if reason is not None:
            self._reject(MARK, reason, mark)
            return
        self.marks[key] = mark
        for cb in self._subs[MARK]:
            self._call(cb, MARK, mark)

    def on_trade(self, trade: Trade) -> None:
        key = (trade.venue, trade.symbol)
        reason = check_trade(trade, self.trades.get(key))
        if reason is not None:
            self._reject(TRADE, reason, trade)
            return
        self.trades[key] = trade
        for cb in self._subs[TRADE]:
            self._call(cb, TRADE, trade)

    def on_depth(self, depth: DepthUpdate) -> None:
        for price, qty in (*depth.bids, *depth.asks):
            if not (price.is_finite() and qty.is_finite()) or price <= 0 or qty < 0:
                self._reject(DEPTH, "bad_level", depth)
                return
        for cb in self._subs[DEPTH]:
            self._call(cb, DEPTH, depth)

    def on_dvol(self, currency: str, candle: Candle) -> None:
        last = self.dvol.get(currency)
        if last is not None and candle.open_ms == last.open_ms:
            return  # polled again: already known
        reason = check_dvol(candle, last)
        if reason is not None:
            self._reject(DVOL, reason, (currency, candle))
            return
        self.dvol[currency] = candle
        for cb in self._subs[DVOL]:
            self._call(cb, DVOL, currency, candle)

    # ---- reads -------------------------------------------------------------------------------------

    def candles(self, venue: str, symbol: str, timeframe: str = "1m") -> list[Candle]:
        return list(self._candles.get((venue, symbol, timeframe), ()))

    def book(self, venue: str, symbol: str) -> BookTicker | None:
        return self.books.get((venue, symbol))

    def mark(self, venue: str, symbol: str) -> MarkPrice | None:
        return self.marks.get((venue, symbol))

    def quarantine_counts(self) -> dict[str, int]:
        return {f"{kind}:{reason}": n for (kind, reason), n in sorted(self.quarantined.items())}

    # ---- internals ---------------------------------------------------------------------------------

    def _series(self, venue: str, symbol: str, tf: str) -> deque[Candle]:
        key = (venue, symbol, tf)
        series = self._candles.get(key)
        if series is None:
            series = self._candles[key] = deque(maxlen=self.history)
        return series

    def _aggregators_for(self, venue: str, symbol: str) -> list[tuple[str, Aggregator]]:
        aggs = self._aggregators.get((venue, symbol))
        if aggs is None:
            aggs = self._aggregators[(venue, symbol)] = [(tf, Aggregator(INTERVAL_MS[tf])) for tf in self.timeframes]
        return aggs

    def _call(self, cb: Callable[..., None], kind: str, *args: Any) -> None:
        try:
            cb(*args)
        except Exception:  # one subscriber's bug never ends a stream nor starves the others
            self._failed(cb, kind, args)

    def _failed(self, cb: Callable[..., None], kind: str, args: tuple) -> None:
        """Inside the except clause of a subscriber's call: counted and logged with the value it choked on."""
        self.subscriber_errors[kind] += 1
        log.exception("%s subscriber %s failed on %r", kind, getattr(cb, "__qualname__", cb), args[-1])

    def _push_candle(self, venue: str, symbol: str, tf: str, candle: Candle) -> None:
        for cb in self._subs[CANDLE]:
            self._call(cb, CANDLE, venue, symbol, tf, candle)
