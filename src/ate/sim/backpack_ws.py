"""Backpack WebSocket at `/` (reference §8.3): subscriptions, the `{"stream","data"}` envelope, keep-alive.

Publishing is synchronous (the matching core calls back from plain code): each connection has an
outbound queue drained by its own writer task, so a slow client never blocks the core and frames
keep their order per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from ate.sim import klines
from ate.sim.backpack_auth import BackpackError, check_window, verify_signed
from ate.sim.faults import Faults, FrameShaper
from ate.venues.backpack.signing import signing_string

PUBLIC_TYPES = {"bookTicker", "depth", "trade", "kline", "markPrice", "ticker", "openInterest"}
PRIVATE_TYPES = {"account.orderUpdate", "account.positionUpdate"}
DEPTH_AGGREGATIONS = {"200ms", "600ms", "1000ms"}
KLINE_INTERVALS = set(klines.BACKPACK_WS)
# [ate choice] Backpack documents no WS error codes besides ccxt's sample {"code":4006,"message":"Invalid stream"}.
INVALID_STREAM = 4006
INVALID_AUTH = 4001


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    account: str | None = None
    streams: set[str] = field(default_factory=set)
    outbox: asyncio.Queue[str | asyncio.Future | None] = field(default_factory=asyncio.Queue)
    last_pong: float = 0.0
    silent: bool = False  # stalled by fault injection: open, answering pings, sending nothing


def parse_stream(name: str, symbols: Iterable[str]) -> tuple[str, str | None] | None:
    """(type, symbol) of a valid stream name, None otherwise; private streams may omit the symbol."""
    known = set(symbols)
    for private in PRIVATE_TYPES:
        if name == private:
            return private, None
        if name.startswith(private + "."):
            sym = name[len(private) + 1:]
            return (private, sym) if sym in known else None
    kind, _, rest = name.partition(".")
    if kind not in PUBLIC_TYPES:
        return None
    if kind == "kline":
        interval, _, rest = rest.partition(".")
        if interval not in KLINE_INTERVALS:
            return None
    elif kind == "depth":
        head, dot, tail = rest.partition(".")
        if dot and head in DEPTH_AGGREGATIONS:
            rest = tail
    return (kind, rest) if rest in known else None


def depth_stream_names(symbol: str) -> list[str]:
    """Every name a depth subscription for ``symbol`` may use; the sim sends each update to all of them."""
    return [f"depth.{symbol}"] + [f"depth.{a}.{symbol}" for a in sorted(DEPTH_AGGREGATIONS)]


class BackpackStreams:
    """Connections, their subscriptions and the frames pushed to them.

    ``on_subscribe(account, stream)`` is told of every subscription and returns the frames to send
    right after it (the `account.positionUpdate` snapshot without `e`); ``now_ms`` is the simulated clock used to check
    private subscription windows. Keep-alive timings are in loop seconds so tests can shrink them.
    ``faults`` may drop or stall a connection and delays every frame sent.
    """

    def __init__(
        self,
        keys: Mapping[str, str],
        symbols: Callable[[], Iterable[str]],
        now_ms: Callable[[], int],
        on_subscribe: Callable[[str | None, str], list[dict]] | None = None,
        ping_interval_s: float = 60.0,
        pong_timeout_s: float = 120.0,
        faults: Faults | None = None,
    ) -> None:
        self._keys = keys
        self._symbols = symbols
        self._now_ms = now_ms
        self._on_subscribe = on_subscribe
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.faults = faults or Faults()
        self._conns: set[Connection] = set()
        self._by_stream: dict[str, set[Connection]] = {}
        self._held: dict[str, list[tuple[Connection, str]]] = {}  # account -> frames kept back (IOC ordering)

    # -- publishing -------------------------------------------------------------------------------

    def wants(self, stream: str) -> bool:
        return bool(self._by_stream.get(stream))

    def publish(self, stream: str, data: dict) -> None:
        conns = self._by_stream.get(stream)
        if conns:
            frame = json.dumps({"stream": stream, "data": data}, separators=(",", ":"))
            for conn in conns:
                conn.outbox.put_nowait(frame)

    def publish_account(self, account: str, stream_type: str, symbol: str, data: dict) -> None:
        """A private event: to the account's subscribers of ``stream_type`` and ``stream_type.<symbol>``."""
        for stream in (stream_type, f"{stream_type}.{symbol}"):
            conns = self._by_stream.get(stream)
            if not conns:
                continue
            frame = json.dumps({"stream": stream, "data": data}, separators=(",", ":"))
            for conn in conns:
                if conn.account == account:
                    held = self._held.get(account)
                    if held is None:
                        conn.outbox.put_nowait(frame)
                    else:
                        held.append((conn, frame))

    # -- IOC reply ordering (ate.sim.faults.StreamGate) --------------------------------------------

    def hold(self, account: str) -> None:
        self._held.setdefault(account, [])

    def release(self, account: str) -> None:
        for conn, frame in self._held.pop(account, []):
            if conn in self._conns:
                conn.outbox.put_nowait(frame)

    async def flushed(self, account: str) -> None:
        marks = []
        for conn in self._conns:
            if conn.account == account:
                mark = asyncio.get_running_loop().create_future()
                conn.outbox.put_nowait(mark)
                marks.append(mark)
        await asyncio.gather(*marks)

    # -- lifecycle ----------------------------------------------------------------------------------

    async def close_all(self) -> None:
        for conn in list(self._conns):
            await conn.ws.close(code=1001, message=b"server shutdown")

    @property
    def connections(self) -> int:
        return len(self._conns)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        conn = Connection(ws, last_pong=loop.time())
        self._conns.add(conn)
        writer = asyncio.create_task(self._write(conn))
        keepalive = asyncio.create_task(self._keepalive(conn))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_frame(conn, msg.data)
                elif msg.type is WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type is WSMsgType.PONG:
                    conn.last_pong = loop.time()
        finally:
            self._forget(conn)
            conn.outbox.put_nowait(None)
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
            await writer
        return ws

    async def _write(self, conn: Connection) -> None:
        faults = self.faults
        shaper = FrameShaper(faults, "backpack")
        while (frame := await conn.outbox.get()) is not None:
            if isinstance(frame, asyncio.Future):
                if not frame.done():
                    frame.set_result(None)
                continue
            if conn.ws.closed or conn.silent:
                continue
            frames = shaper.frames(frame)
            if frames == "drop":
                await conn.ws.close(code=1011, message=b"connection dropped")
                continue
            if frames == "stall":
                conn.silent = True
                continue
            await faults.delay()
            for text in frames:
                with contextlib.suppress(ConnectionError):
                    await conn.ws.send_str(text)

    async def _keepalive(self, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        while not conn.ws.closed:
            await asyncio.sleep(self.ping_interval_s)
            if loop.time() - conn.last_pong > self.pong_timeout_s:
                await conn.ws.close(code=1000, message=b"pong timeout")
                return
            with contextlib.suppress(ConnectionError):
                await conn.ws.ping()

    def _forget(self, conn: Connection) -> None:
        self._conns.discard(conn)
        for stream in conn.streams:
            subs = self._by_stream.get(stream)
            if subs is not None:
                subs.discard(conn)
                if not subs:
                    del self._by_stream[stream]
        conn.streams.clear()

    # -- frames from the client -------------------------------------------------------------------

    def _error(self, conn: Connection, frame_id: object, code: int, message: str) -> None:
        conn.outbox.put_nowait(json.dumps({"id": frame_id, "error": {"code": code, "message": message}}))

    def _on_frame(self, conn: Connection, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            frame = None
        if not isinstance(frame, dict):
            self._error(conn, None, INVALID_STREAM, "Invalid request")
            return
        frame_id = frame.get("id")
        method = str(frame.get("method", "")).upper()
        params = frame.get("params")
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE") or not isinstance(params, list):
            self._error(conn, frame_id, INVALID_STREAM, "Invalid method")
            return
        symbols = list(self._symbols())
        parsed = [parse_stream(str(p), symbols) for p in params]
        if any(p is None for p in parsed):
            self._error(conn, frame_id, INVALID_STREAM, "Invalid stream")
            return
        if method == "UNSUBSCRIBE":
            for name in params:
                conn.streams.discard(name)
                subs = self._by_stream.get(name)
                if subs is not None:
                    subs.discard(conn)
            return
        if any(p is not None and p[0] in PRIVATE_TYPES for p in parsed):
            try:
                conn.account = self._authenticate(frame.get("signature"))
            except BackpackError as exc:
                self._error(conn, frame_id, INVALID_AUTH, exc.message)
                return
        for name in params:
            conn.streams.add(name)
            self._by_stream.setdefault(name, set()).add(conn)
            if self._on_subscribe is not None:
                for data in self._on_subscribe(conn.account, name):
                    conn.outbox.put_nowait(json.dumps({"stream": name, "data": data}, separators=(",", ":")))

    def _authenticate(self, signature: object) -> str:
        """Account of a private subscription signed over `instruction=subscribe&timestamp=…&window=…`."""
        if not isinstance(signature, list) or len(signature) != 4:
            raise BackpackError(400, "INVALID_CLIENT_REQUEST", "Invalid signature")
        api_key, sig, ts_raw, window_raw = (str(s) for s in signature)
        if api_key not in self._keys:
            raise BackpackError(401, "UNAUTHORIZED", "Invalid API key")
        try:
            ts, window = int(ts_raw), int(window_raw)
        except ValueError:
            raise BackpackError(400, "INVALID_CLIENT_REQUEST", "Invalid signature") from None
        check_window(ts, window, self._now_ms())
        return verify_signed(self._keys, api_key, sig, signing_string("subscribe", {}, ts, window))
