"""Binance market streams (combined ``/stream?streams=``) and user data (spot WS API, USD-M listenKey)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from ate.data.candles import MINUTE_MS
from ate.model import MarketKind
from ate.venues.base import MarketSink, UserSink
from ate.venues.binance.parse import SERVER_SHUTDOWN, StreamDecoder, parse_execution_report
from ate.venues.book import DepthKeeper
from ate.venues.ws import CandleGapFiller, WsConnection, dispatch

if TYPE_CHECKING:
    from ate.venues.binance.client import BinanceClient

log = logging.getLogger("ate.venues.binance")

LISTEN_KEY_KEEPALIVE_S = 30 * 60  # [ate choice] half the 60 min validity


class BinanceMarketStream:
    def __init__(self, client: BinanceClient, symbols: Sequence[str], sink: MarketSink, *, book: bool,
                 candles: bool, trades: bool, marks: bool, depth: bool, **ws_options) -> None:
        self.client = client
        self.sink = sink
        self.decoder = StreamDecoder(client.venue, client.clock.now_ms)
        self.depth = DepthKeeper(client.venue, self._snapshot, sink.on_depth) if depth else None
        self.gaps = CandleGapFiller(client.clock, MINUTE_MS, self._fetch_1m,
                                    lambda sym, c: sink.on_candle(client.venue, sym, c))
        public, market = [], []
        for s in (x.lower() for x in symbols):
            public += [f"{s}@bookTicker"] * book + [f"{s}@depth@100ms"] * depth
            market += [f"{s}@kline_1m"] * candles + [f"{s}@aggTrade"] * trades + [f"{s}@markPrice@1s"] * marks
        base = client.urls.stream.rstrip("/")
        if client.kind is MarketKind.SPOT:
            groups = {"": public + market}
        else:  # USD-M routes by path; a /market stream asked on /public yields nothing (reference §0.2)
            groups = {"/public": public, "/market": market}
        self.connections = [
            WsConnection(f"{client.venue}{path or '/stream'}", f"{base}{path}/stream?streams={'/'.join(names)}",
                         clock=client.clock, on_message=self._on_message, on_reconnect=self.gaps.after_reconnect,
                         session=client.session, **ws_options)
            for path, names in groups.items() if names
        ]

    async def _snapshot(self, symbol: str):
        return await self.client.depth(symbol, 1000)

    async def _fetch_1m(self, symbol: str, start_ms: int, end_ms: int):
        return await self.client.klines(symbol, "1m", start_ms, end_ms)

    def _on_message(self, frame: str | bytes):
        ev = self.decoder.decode(frame)
        if ev is None:
            return None
        if ev is SERVER_SHUTDOWN:
            for conn in self.connections:
                conn.reconnect()
            return None
        return dispatch(ev, self.sink, self.gaps, self.depth)

    async def run(self) -> None:
        await asyncio.gather(*(c.run() for c in self.connections))

    async def close(self) -> None:
        for c in self.connections:
            await c.close()


class _UserEvent(msgspec.Struct):
    event: dict
    subscriptionId: int | None = None  # noqa: N815 - venue field name


class BinanceUserStream:
    """Spot: WS API ``userDataStream.subscribe.signature``. USD-M: listenKey on ``/private/ws``."""

    def __init__(self, client: BinanceClient, sink: UserSink, **ws_options) -> None:
        ws_options = {**ws_options, "stale_after_s": None}  # silence is normal here
        self.client = client
        self.sink = sink
        self._ids = itertools.count(1)
        self._keepalive: asyncio.Task | None = None
        self.subscribed = asyncio.Event()
        self.errors: list[str] = []
        if client.kind is MarketKind.SPOT:
            if not client.urls.ws_api:
                raise ValueError("spot user data needs the WS API URL")
            self.conn = WsConnection(f"{client.venue}/user", client.urls.ws_api, clock=client.clock,
                                     on_message=self._on_spot, on_open=self._subscribe_spot,
                                     on_reconnect=self._on_reconnect, session=client.session, **ws_options)
        else:
            self.conn = WsConnection(f"{client.venue}/user", self._usdm_url, clock=client.clock,
                                     on_message=self._on_usdm, on_reconnect=self._on_reconnect,
                                     session=client.session, **ws_options)

    async def _on_reconnect(self) -> None:
        on_gap = getattr(self.sink, "on_gap", None)  # optional: sinks that reconcile after a reconnect
        if on_gap is not None:
            on_gap(self.client.venue)

    async def _subscribe_spot(self, ws) -> None:
        await self.client.limiter.acquire(2)  # WS API requests share the IP's request weight
        await ws.send_json(self.client.user_subscribe_frame(next(self._ids)))

    def _on_spot(self, frame: str | bytes) -> None:
        msg = msgspec.json.decode(frame)
        if "event" not in msg:
            status = msg.get("status")
            if status == 200:
                self.subscribed.set()
                return
            err = msg.get("error") or {}
            self.errors.append(f"{err.get('code')}: {err.get('msg')}")
            log.error("user stream subscribe failed: %s %s", self.client.venue, err.get("code"))
            if status in (418, 429):  # retryAfter is the epoch ms to retry at (reference §3.5)
                retry_at = (err.get("data") or {}).get("retryAfter") or self.client.clock.now_ms() + 60_000
                self.client.limiter.pause((retry_at - self.client.clock.now_ms()) / 1000, f"WS API {status}")
                self.conn.reconnect()  # resubscribes once the limiter lets it
            return
        e = msg["event"]
        kind = e.get("e")
        if kind == "executionReport":
            self.sink.on_order(*parse_execution_report(self.client.venue, e))
        elif kind in ("eventStreamTerminated", "serverShutdown"):
            self.conn.reconnect()

    async def _usdm_url(self) -> str:
        key = await self.client.listen_key()
        self.subscribed.set()
        return f"{self.client.urls.stream.rstrip('/')}/private/ws?listenKey={key}"

    def _on_usdm(self, frame: str | bytes) -> None:
        e = msgspec.json.decode(frame)
        kind = e.get("e")
        if kind == "ORDER_TRADE_UPDATE":
            o = dict(e["o"])
            o.setdefault("E", e.get("E"))
            self.sink.on_order(*parse_execution_report(self.client.venue, o))
        elif kind == "listenKeyExpired":
            self.conn.reconnect()

    async def _keep_listen_key(self) -> None:
        while True:
            await self.client.clock.sleep(LISTEN_KEY_KEEPALIVE_S)
            with contextlib.suppress(Exception):
                await self.client.keepalive_listen_key()

    async def run(self) -> None:
        if self.client.kind is MarketKind.PERP:
            self._keepalive = asyncio.create_task(self._keep_listen_key())
        try:
            await self.conn.run()
        finally:
            if self._keepalive is not None:
                self._keepalive.cancel()

    async def close(self) -> None:
        await self.conn.close()
