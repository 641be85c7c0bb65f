"""Backpack market streams and the private ``account.orderUpdate`` stream (reference §8.3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from ate.data.candles import MINUTE_MS
from ate.venues.backpack.parse import StreamDecoder, parse_order_update
from ate.venues.base import MarketSink, UserSink
from ate.venues.book import DepthKeeper
from ate.venues.ws import CandleGapFiller, WsConnection, dispatch

if TYPE_CHECKING:
    from ate.venues.backpack.client import BackpackClient


class BackpackMarketStream:
    def __init__(self, client: BackpackClient, symbols: Sequence[str], sink: MarketSink, *, book: bool,
                 candles: bool, trades: bool, marks: bool, depth: bool, **ws_options) -> None:
        self.client = client
        self.sink = sink
        self.decoder = StreamDecoder(client.venue)
        self.depth = DepthKeeper(client.venue, self._snapshot, sink.on_depth) if depth else None
        self.gaps = CandleGapFiller(client.clock, MINUTE_MS, self._fetch_1m,
                                    lambda sym, c: sink.on_candle(client.venue, sym, c))
        self.streams = []
        for s in symbols:
            self.streams += ([f"bookTicker.{s}"] * book + [f"kline.1m.{s}"] * candles + [f"trade.{s}"] * trades
                             + [f"markPrice.{s}"] * marks + [f"depth.{s}"] * depth)
        self.conn = WsConnection(f"{client.venue}/market", client.urls.ws, clock=client.clock,
                                 on_message=self._on_message, on_open=self._subscribe,
                                 on_reconnect=self.gaps.after_reconnect, session=client.session, **ws_options)

    async def _snapshot(self, symbol: str):
        return await self.client.depth(symbol, 1000)

    async def _fetch_1m(self, symbol: str, start_ms: int, end_ms: int):
        return await self.client.klines(symbol, "1m", start_ms, end_ms)

    async def _subscribe(self, ws) -> None:
        await ws.send_json({"method": "SUBSCRIBE", "params": self.streams})

    def _on_message(self, frame: str | bytes):
        ev = self.decoder.decode(frame)
        return None if ev is None else dispatch(ev, self.sink, self.gaps, self.depth)

    async def run(self) -> None:
        await self.conn.run()

    async def close(self) -> None:
        await self.conn.close()


class BackpackUserStream:
    def __init__(self, client: BackpackClient, sink: UserSink, **ws_options) -> None:
        ws_options = {**ws_options, "stale_after_s": None}  # silence is normal here
        self.client = client
        self.sink = sink
        self.errors: list[str] = []
        self.conn = WsConnection(f"{client.venue}/user", client.urls.ws, clock=client.clock,
                                 on_message=self._on_message, on_open=self._subscribe,
                                 on_reconnect=self._on_reconnect, session=client.session, **ws_options)

    async def _subscribe(self, ws) -> None:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["account.orderUpdate"],
                            "signature": self.client.subscribe_signature()})

    async def _on_reconnect(self) -> None:
        on_gap = getattr(self.sink, "on_gap", None)  # optional: sinks that reconcile after a reconnect
        if on_gap is not None:
            on_gap(self.client.venue)

    def _on_message(self, frame: str | bytes) -> None:
        msg = msgspec.json.decode(frame)
        if "stream" not in msg:
            err = msg.get("error") or msg
            self.errors.append(f"{err.get('code')}: {err.get('message')}")
            return
        if msg["stream"].startswith("account.orderUpdate"):
            self.sink.on_order(*parse_order_update(self.client.venue, msg["data"], self.client.coid_for))

    async def run(self) -> None:
        await self.conn.run()

    async def close(self) -> None:
        await self.conn.close()
