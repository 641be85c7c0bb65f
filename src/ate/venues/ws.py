"""A reconnecting WebSocket connection shared by every venue stream.

Ping/pong: aiohttp answers server pings itself (``autoping``), echoing the payload as Binance
requires. A watchdog on the injectable clock closes a connection that went quiet (stale) or reached
its planned lifetime (Binance drops connections at 24 h); the run loop then reconnects with
exponential backoff, re-subscribes through ``on_open`` and calls ``on_reconnect`` so the owner can
backfill what it missed.

Supervision: no message can end a stream. A malformed frame is counted; any other exception a handler
raises is logged with the stream's name and the frame's start, counted, and the connection restarts so
the owner's `on_reconnect` (a user stream's reconciliation) recovers whatever that handler missed. The run
loop itself survives anything short of cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

import aiohttp
import msgspec

from ate.model.market import BookTicker, DepthUpdate, MarkPrice, Trade
from ate.venues.base import MarketSink
from ate.venues.book import DepthKeeper
from ate.venues.clock import Clock
from ate.venues.errors import VenueError

log = logging.getLogger("ate.venues.ws")

_ENDED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
_BAD_MESSAGE = (msgspec.ValidationError, msgspec.DecodeError, ValueError, KeyError, IndexError, TypeError,
                ArithmeticError)
OnOpen = Callable[[aiohttp.ClientWebSocketResponse], Awaitable[None]]


class WsConnection:
    def __init__(self, name: str, url: str | Callable[[], Awaitable[str]], *, clock: Clock,
                 on_message: Callable[[str | bytes], Awaitable[None] | None], on_open: OnOpen | None = None,
                 on_reconnect: Callable[[], Awaitable[None]] | None = None,
                 session: aiohttp.ClientSession | None = None, stale_after_s: float | None = 60.0,
                 max_lifetime_s: float = 23.5 * 3600, watchdog_every_s: float = 1.0,
                 backoff_base_s: float = 0.5, backoff_cap_s: float = 30.0, close_timeout_s: float = 5.0,
                 rng: Callable[[], float] = random.random) -> None:
        self.name = name
        self._url = url
        self.clock = clock
        self.on_message = on_message
        self.on_open = on_open
        self.on_reconnect = on_reconnect
        self._session = session
        # None: no silence watchdog (user streams are quiet when nothing happens; ping/pong proves them alive)
        self.stale_after_ms = None if stale_after_s is None else int(stale_after_s * 1000)
        self.max_lifetime_ms = int(max_lifetime_s * 1000)
        self.watchdog_every_s = watchdog_every_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.close_timeout_s = close_timeout_s  # a stale peer never answers our close frame
        self._rng = rng
        self._closed = False
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.connected = asyncio.Event()
        self.connects = 0
        self.stale_reconnects = 0
        self.planned_reconnects = 0
        self.last_rx_ms = 0
        self.bad_messages = 0
        self.handler_errors = 0
        self._reconnect = asyncio.Event()

    async def _resolve_url(self) -> str:
        return self._url if isinstance(self._url, str) else await self._url()

    async def send_json(self, payload: object) -> None:
        if self._ws is None or self._ws.closed:
            raise ConnectionError(f"{self.name}: not connected")
        await self._ws.send_json(payload)

    async def run(self) -> None:
        own = self._session is None
        session = self._session or aiohttp.ClientSession()
        attempt = 0
        try:
            while not self._closed:
                try:
                    url = await self._resolve_url()
                    async with session.ws_connect(
                            url, autoping=True, max_msg_size=0,
                            timeout=aiohttp.ClientWSTimeout(ws_close=self.close_timeout_s)) as ws:
                        self._ws = ws
                        self.last_rx_ms = connected_at = self.clock.now_ms()
                        if self.on_open is not None:
                            await self.on_open(ws)
                        if self.connects and self.on_reconnect is not None:
                            await self.on_reconnect()
                        self.connects += 1
                        attempt = 0
                        self.connected.set()
                        planned = await self._read(ws, connected_at)
                        if planned:
                            continue  # reconnect at once, no backoff
                except (aiohttp.ClientError, OSError, TimeoutError, VenueError) as exc:
                    # VenueError: a REST backfill failed; reconnecting retries it from the last candle kept.
                    log.warning("ws connection failed: %s %s", self.name, type(exc).__name__)
                except Exception:  # a bug in an owner's callback: restart the stream, never end it
                    log.exception("ws stream %s failed; restarting", self.name)
                finally:
                    self.connected.clear()
                    self._ws = None
                if self._closed:
                    break
                delay = self._rng() * min(self.backoff_cap_s, self.backoff_base_s * 2**attempt)
                attempt += 1
                await self.clock.sleep(delay)
        finally:
            if own:
                await session.close()

    def reconnect(self) -> None:
        """Ask for an immediate reconnect (venue shutdown notice, expired listen key, ended subscription)."""
        self._reconnect.set()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, connected_at: int) -> bool:
        """Dispatch messages until the socket ends or the watchdog fires; True for a planned reconnect."""
        self._reconnect.clear()
        reader = asyncio.create_task(self._consume(ws))
        watchdog = asyncio.create_task(self._watch(connected_at))
        asked = asyncio.create_task(self._reconnect.wait())
        done, pending = await asyncio.wait({reader, watchdog, asked}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if reader in done:
            reader.result()  # re-raise a transport error
            return False
        if asked in done:
            self.planned_reconnects += 1
            return True
        return watchdog.result() == "lifetime"

    async def _consume(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                self.last_rx_ms = self.clock.now_ms()
                try:
                    pending = self.on_message(msg.data)
                    if pending is not None:  # rare async work (a backfill) keeps message order
                        await pending
                except _BAD_MESSAGE as exc:  # a malformed frame is counted, never fatal to the stream
                    self.bad_messages += 1
                    log.warning("bad ws message on %s: %s", self.name, type(exc).__name__)
                except Exception:
                    self.handler_errors += 1
                    head = msg.data[:200] if isinstance(msg.data, str | bytes) else ""
                    log.exception("ws handler failed on %s (message %r); restarting the stream", self.name, head)
                    self._reconnect.set()
            elif msg.type in _ENDED:
                return

    async def _watch(self, connected_at: int) -> str:
        """Returns 'lifetime' when the planned lifetime is reached, 'stale' when nothing came for too long."""
        while True:
            await self.clock.sleep(self.watchdog_every_s)
            now = self.clock.now_ms()
            if now - connected_at >= self.max_lifetime_ms:
                self.planned_reconnects += 1
                return "lifetime"
            if self.stale_after_ms is not None and now - self.last_rx_ms >= self.stale_after_ms:
                self.stale_reconnects += 1
                log.warning("ws stale, reconnecting: %s", self.name)
                return "stale"

    async def close(self) -> None:
        self._closed = True
        if self._ws is not None:
            await self._ws.close()


class CandleGapFiller:
    """Keeps a closed-candle series gap-free: backfills over REST after a reconnect or a skipped candle.

    ``fetch(symbol, start_ms, end_ms)`` returns closed 1m candles with open time in [start_ms, end_ms).
    """

    def __init__(self, clock: Clock, interval_ms: int,
                 fetch: Callable[[str, int, int], Awaitable[list]], emit: Callable[[str, object], None]) -> None:
        self.clock = clock
        self.interval_ms = interval_ms
        self.fetch = fetch
        self.emit = emit
        self.last_open: dict[str, int] = {}
        self.backfilled = 0

    async def on_closed(self, symbol: str, candle) -> None:
        """A closed candle from the stream: fill any hole before it, then pass it on."""
        last = self.last_open.get(symbol)
        if last is not None and candle.open_ms > last + self.interval_ms:
            await self._backfill(symbol, last + self.interval_ms, candle.open_ms)
        self._push(symbol, candle)

    def _push(self, symbol: str, candle) -> None:
        last = self.last_open.get(symbol)
        if last is not None and candle.open_ms <= last:
            return  # already delivered (stream and backfill overlap)
        self.last_open[symbol] = candle.open_ms
        self.emit(symbol, candle)

    async def _backfill(self, symbol: str, start_ms: int, end_ms: int) -> None:
        for c in await self.fetch(symbol, start_ms, end_ms):
            if c.open_ms + self.interval_ms <= self.clock.now_ms():
                self.backfilled += 1
                self._push(symbol, c)

    async def after_reconnect(self) -> None:
        """Everything that closed while the connection was down (call once subscribed again)."""
        now = self.clock.now_ms()
        current = now - now % self.interval_ms
        for symbol, last in list(self.last_open.items()):
            if last + self.interval_ms < current:
                await self._backfill(symbol, last + self.interval_ms, current)


def dispatch(ev: object, sink: MarketSink, gaps: CandleGapFiller, depth: DepthKeeper | None = None):
    """Route one decoded event; returns an awaitable only for rare async work (a candle backfill or a
    depth resync), which the reader awaits to keep message order."""
    t = type(ev)
    if t is BookTicker:
        sink.on_book(ev)
    elif t is tuple:
        return gaps.on_closed(*ev)
    elif t is MarkPrice:
        sink.on_mark(ev)
    elif t is Trade:
        sink.on_trade(ev)
    elif t is DepthUpdate:
        if depth is None:
            sink.on_depth(ev)
        else:
            return depth.on_diff(ev)
    return None
