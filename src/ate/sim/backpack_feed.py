"""Turns matching-core events into Backpack stream frames (reference §8.3).

Depth is sent as diffs of the visible levels against what this feed last sent for the symbol, so
each event's ``U`` is the previous ``u + 1`` and ``u`` is the core's book ``update_id`` — the same id
REST `/api/v1/depth` reports as ``lastUpdateId``. The diff state exists only while someone listens.
"""

from __future__ import annotations

from collections.abc import Callable

from ate.model import Side, fmt
from ate.sim import backpack_wire as wire
from ate.sim import klines
from ate.sim.backpack_rest import BackpackRest
from ate.sim.backpack_ws import BackpackStreams, depth_stream_names, parse_stream
from ate.sim.core import (
    KLINE,
    MARK,
    ORDER,
    POSITION,
    TRADE,
    KlineClosed,
    Market,
    MarkUpdate,
    OrderEvent,
    PositionEvent,
    PublicTrade,
)
from ate.sim.faults import Faults, poison_book


class _Depth:
    __slots__ = ("u", "bids", "asks")

    def __init__(self, u: int, bids: dict[int, int], asks: dict[int, int]) -> None:
        self.u = u
        self.bids = bids
        self.asks = asks


def _diff(old: dict[int, int], new: dict[int, int], m: Market) -> list[list[str]]:
    """Changed levels (ticks -> steps) as absolute [price, qty] strings, ascending; "0" removes a level."""
    ticks = sorted({t for t, s in new.items() if old.get(t) != s} | (old.keys() - new.keys()))
    return [[fmt(m.price(t)), fmt(m.qty(new[t])) if t in new else "0"] for t in ticks]


class BackpackFeed:
    """Core listener for one Backpack face. ``now_us`` is the (possibly skewed) simulated clock in µs.
    ``faults`` withholds market-data messages (stale data) and skips depth diffs (sequence gaps)."""

    def __init__(self, rest: BackpackRest, streams: BackpackStreams, now_us: Callable[[], int],
                 faults: Faults | None = None) -> None:
        self.rest = rest
        self.core = rest.core
        self.streams = streams
        self.now_us = now_us
        self.faults = faults or Faults()
        self._depth: dict[str, _Depth] = {}
        self._ticker_sec: dict[str, int] = {}
        self._has_position: dict[tuple[str, str], bool] = {}  # (account, symbol) -> has a position

    def attach(self) -> list[Callable[[], None]]:
        """Register with the core; returns the unregister functions."""
        return [self.core.listen_book(self.on_book), self.core.listen(self.on_event)]

    # -- subscriptions ----------------------------------------------------------------------------

    def on_subscribe(self, account: str | None, stream: str) -> list[dict]:
        """Frames to send right after a subscription; starts the depth diff state for a symbol."""
        parsed = parse_stream(stream, [m.symbol for m in self.rest.markets()])
        if parsed is None:
            return []
        kind, symbol = parsed
        if kind == "depth" and symbol is not None and symbol not in self._depth:
            m = self.core.markets[(wire.VENUE, symbol)]
            self._depth[symbol] = _Depth(m.update_id, dict(m.levels(Side.BUY, m.depth_levels)),
                                         dict(m.levels(Side.SELL, m.depth_levels)))
        if kind == "account.positionUpdate" and account is not None:
            now = self.now_us()
            return [wire.ws_position(p, self.core.markets[(wire.VENUE, sym)], account, None, now // 1000, now)
                    for sym, p in sorted(self.core.positions(account, wire.VENUE).items())
                    if p.qty and (symbol is None or sym == symbol)]
        return []

    # -- market data ------------------------------------------------------------------------------

    def _market_data(self, name: str, data: dict) -> None:
        if not self.faults.stale(wire.VENUE):
            self.streams.publish(name, data)

    def on_book(self, m: Market) -> None:
        if m.venue != wire.VENUE:
            return
        streams = self.streams
        sym = m.symbol
        now = self.now_us()
        name = "bookTicker." + sym
        depth = self._depth.get(sym)
        # a fault is spent only on an update that is published
        bad = self.faults.book_fault(wire.VENUE, sym) if streams.wants(name) or depth is not None else None
        if streams.wants(name):
            ticker = wire.ws_book_ticker(m, now)
            self._market_data(name, poison_book(ticker, bad) if bad else ticker)
        if depth is not None:
            names = [n for n in depth_stream_names(sym) if streams.wants(n)]
            if not names:
                del self._depth[sym]
            elif m.update_id > depth.u:
                bids = dict(m.levels(Side.BUY, m.depth_levels))
                asks = dict(m.levels(Side.SELL, m.depth_levels))
                data = {"e": "depth", "E": now, "s": sym, "a": _diff(depth.asks, asks, m),
                        "b": _diff(depth.bids, bids, m), "U": depth.u + 1, "u": m.update_id, "T": m.ts_ms * 1000}
                depth.u, depth.bids, depth.asks = m.update_id, bids, asks
                if bad:
                    data = poison_book(data, bad)
                if not self.faults.depth_gap(wire.VENUE):
                    for n in names:
                        self._market_data(n, data)
        name = "ticker." + sym
        second = now // 1_000_000
        if streams.wants(name) and self._ticker_sec.get(sym) != second:
            self._ticker_sec[sym] = second
            t = self.rest.ticker(m, "1d")
            if t is not None:
                self._market_data(name, {"e": "ticker", "E": now, "s": sym, "o": t["firstPrice"], "c": t["lastPrice"],
                                       "h": t["high"], "l": t["low"], "v": t["volume"], "V": t["quoteVolume"],
                                       "n": int(t["trades"])})

    def on_event(self, kind: str, payload: object) -> None:
        if kind == TRADE:
            self._trade(payload)  # type: ignore[arg-type]
        elif kind == KLINE:
            self._kline(payload)  # type: ignore[arg-type]
        elif kind == MARK:
            self._mark(payload)  # type: ignore[arg-type]
        elif kind == ORDER:
            self._order(payload)  # type: ignore[arg-type]
        elif kind == POSITION:  # a liquidation also emits POSITION with the closed position
            self._position(payload)  # type: ignore[arg-type]

    def _trade(self, t: PublicTrade) -> None:
        name = "trade." + t.market.symbol
        if t.market.venue == wire.VENUE and self.streams.wants(name):
            self._market_data(name, wire.ws_trade(t, self.now_us()))

    def _kline(self, k: KlineClosed) -> None:
        m, c = k.market, k.candle
        if m.venue != wire.VENUE:
            return
        for name_of, interval in klines.BACKPACK_WS.items():
            name = f"kline.{name_of}.{m.symbol}"
            if not self.streams.wants(name):
                continue
            rows = klines.klines(m.candles, interval, c.open_ms, c.open_ms)
            if not rows or not rows[-1].open_ms <= c.open_ms < rows[-1].close_ms:
                continue  # the candle is coarser than the interval
            data = wire.ws_kline(m, rows[-1], self.now_us())
            data["X"] = c.close_ms >= rows[-1].close_ms  # pushed on every change, final once the bucket has closed
            self._market_data(name, data)

    def _mark(self, u: MarkUpdate) -> None:
        name = "markPrice." + u.market.symbol
        if u.market.venue == wire.VENUE and self.streams.wants(name):
            self._market_data(name, wire.ws_mark_price(u.market, u.mark, u.funding_rate, u.next_funding_ms,
                                                          u.ts_ms, self.now_us()))

    # -- account ----------------------------------------------------------------------------------

    def _order(self, e: OrderEvent) -> None:
        o = e.order
        if o.venue == wire.VENUE:
            self.streams.publish_account(e.account, "account.orderUpdate", o.symbol,
                                         wire.ws_order_update(o, e.exec_type, e.fill, e.ts_ms, self.now_us()))

    def _position(self, e: PositionEvent) -> None:
        p = e.position
        if e.venue != wire.VENUE:
            return
        key = (e.account, p.symbol)
        had = self._has_position.get(key, False)
        has = p.qty != 0
        self._has_position[key] = has
        event = "positionClosed" if not has else ("positionAdjusted" if had else "positionOpened")
        m = self.core.markets[(wire.VENUE, p.symbol)]
        self.streams.publish_account(e.account, "account.positionUpdate", p.symbol,
                                     wire.ws_position(p, m, e.account, event, e.ts_ms, self.now_us()))
