"""A local order book kept from a REST snapshot plus diff events, with each venue's sequencing rules.

Binance Spot and Backpack chain diffs by ids (``U`` = previous ``u`` + 1; first applied event has
``U <= lastUpdateId + 1 <= u``); Binance USD-M chains by ``pu`` = previous ``u`` (first applied event has
``U <= lastUpdateId <= u``). A break in the chain means an event was missed: the book is marked
unsynced and must be re-seeded from a new snapshot (reference §6.2, §6.3, §8.3).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from ate.model.market import DepthUpdate

ZERO = Decimal(0)


class LocalBook:
    __slots__ = ("venue", "symbol", "bids", "asks", "last_id", "synced", "_bridged", "_buffer", "resyncs")

    def __init__(self, venue: str, symbol: str) -> None:
        self.venue = venue
        self.symbol = symbol
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.last_id = 0
        self.synced = False
        self._bridged = False
        self._buffer: list[DepthUpdate] = []
        self.resyncs = 0

    def snapshot(self, snap: DepthUpdate) -> None:
        """Seed from a REST snapshot, then replay the diffs buffered while it was fetched."""
        self.bids = {p: q for p, q in snap.bids if q > 0}
        self.asks = {p: q for p, q in snap.asks if q > 0}
        self.last_id = snap.last_id
        self.synced = True
        self._bridged = False
        buffered, self._buffer = self._buffer, []
        for d in buffered:
            if not self.apply(d):
                break

    def apply(self, d: DepthUpdate) -> bool:
        """Apply a diff; False when it reveals a gap (the book is then unsynced and needs a snapshot)."""
        if not self.synced:
            self._buffer.append(d)
            return True
        usdm = d.prev_id is not None
        if d.last_id < self.last_id or (not usdm and d.last_id == self.last_id):
            return True  # already contained in the book
        if not self._bridged:
            bridge = self.last_id if usdm else self.last_id + 1
            ok = d.first_id <= bridge <= d.last_id
        else:
            ok = d.prev_id == self.last_id if usdm else d.first_id == self.last_id + 1
        if not ok:
            self.synced = False
            self.resyncs += 1
            return False
        self._bridged = True
        self._levels(d)
        return True

    def _levels(self, d: DepthUpdate) -> None:
        for side, levels in ((self.bids, d.bids), (self.asks, d.asks)):
            for p, q in levels:
                if q > 0:
                    side[p] = q
                else:
                    side.pop(p, None)  # deleting an unknown level is normal
        self.last_id = d.last_id

    def best(self) -> tuple[Decimal | None, Decimal | None]:
        return (max(self.bids) if self.bids else None, min(self.asks) if self.asks else None)

    def top(self, n: int = 5) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        bids = sorted(self.bids.items(), reverse=True)[:n]
        asks = sorted(self.asks.items())[:n]
        return bids, asks


class DepthKeeper:
    """Keeps one LocalBook per symbol from a diff stream, re-seeding from REST whenever the chain breaks.
    ``emit`` receives each applied diff, and a full snapshot after every (re)sync."""

    def __init__(self, venue: str, fetch: Callable[[str], Awaitable[DepthUpdate]],
                 emit: Callable[[DepthUpdate], None], max_attempts: int = 5) -> None:
        self.venue = venue
        self.fetch = fetch
        self.emit = emit
        self.max_attempts = max_attempts
        self.books: dict[str, LocalBook] = {}

    def on_diff(self, d: DepthUpdate) -> Awaitable[None] | None:
        book = self.books.get(d.symbol)
        if book is None:
            book = self.books[d.symbol] = LocalBook(self.venue, d.symbol)
        before = book.last_id
        book.apply(d)
        if book.synced:
            if book.last_id != before:
                self.emit(d)
            return None
        return self._resync(book)

    async def _resync(self, book: LocalBook) -> None:
        # The stream reader waits for this, so diffs sent meanwhile queue up and bridge the snapshot.
        for _ in range(self.max_attempts):
            snap = await self.fetch(book.symbol)
            book.snapshot(snap)
            if book.synced:
                bids, asks = book.top(len(book.bids) + len(book.asks))
                self.emit(DepthUpdate(self.venue, book.symbol, bids, asks, book.last_id, book.last_id, None,
                                      snap.ts_ms, snapshot=True))
                return
