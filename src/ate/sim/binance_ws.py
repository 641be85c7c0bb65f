"""Binance WebSocket surfaces: market streams (Spot ``/ws``, ``/stream``; USD-M ``/public``,
``/market`` and the legacy unrouted paths), the Spot WS API user-data subscription (``/ws-api/v3``)
and the USD-M private stream (``/private/ws?listenKey=``).

Core callbacks only enqueue; one sender task per connection writes, applying the fault plan (drop,
stall, latency). USD-M routing follows §6.3: a ``/market`` stream asked for on ``/public`` or on the
legacy path is accepted but never sends data, as on the real venue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from aiohttp import WSMsgType, web

from ate.data.candles import Candle
from ate.model import Balance
from ate.sim import binance_wire as wire
from ate.sim import klines
from ate.sim.binance_auth import ApiError, BinanceKeys, check_timing, verify_ws_signature
from ate.sim.binance_limits import RateLimiter
from ate.sim.binance_rest import ListenKeys
from ate.sim.clock import ScaledClock
from ate.sim.core import (
    BALANCE,
    KLINE,
    MARK,
    ORDER,
    POSITION,
    TRADE,
    BalanceEvent,
    KlineClosed,
    Market,
    OrderEvent,
    PositionEvent,
    PublicTrade,
)
from ate.sim.faults import FrameShaper, poison_book
from ate.sim.instruments import BINANCE_SPOT, BINANCE_USDM
from ate.sim.runner import SimContext

QUEUE_MAX = 10_000
TRANSFERS = ("DEPOSIT", "WITHDRAW")
PUBLIC_KINDS = ("bookTicker", "depth", "trade")  # USD-M /public (ccxt also takes trade there)
_DUMPS = json.JSONEncoder(separators=(",", ":")).encode


def _kind(stream: str) -> str:
    """'btcusdt@depth20@100ms' → 'depth'; 'btcusdt@kline_1m' → 'kline'; '!markPrice@arr' → 'markPrice'."""
    part = stream.split("@")[1] if "@" in stream else stream
    for prefix in ("depth", "kline", "markPrice"):
        if part.startswith(prefix):
            return prefix
    return part


@dataclass(eq=False)
class Conn:
    ws: web.WebSocketResponse
    path: str  # spot, public, market, legacy, private, wsapi
    combined: bool = False
    streams: set[str] = field(default_factory=set)
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX))
    inbound: deque = field(default_factory=lambda: deque(maxlen=64))
    account: str | None = None
    listen_key: str | None = None
    subscriptions: dict[int, str] = field(default_factory=dict)  # ws-api subscriptionId -> account
    stalled: bool = False
    closing: bool = False
    task: asyncio.Task | None = None

    def push(self, text: str | asyncio.Future | None) -> None:
        """Queue a frame for the sender; None closes the connection after what is queued; a future is
        resolved once everything queued before it has been written."""
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:  # a consumer this slow is disconnected, as Binance does
            if not self.closing:
                self.closing = True
                asyncio.get_running_loop().create_task(self.ws.close())


class BinanceStreams:
    def __init__(self, ctx: SimContext, spot: bool, keys: BinanceKeys, limiter: RateLimiter,
                 listen_keys: ListenKeys) -> None:
        self.ctx = ctx
        self.core = ctx.core
        self.spot = spot
        self.venue = BINANCE_SPOT if spot else BINANCE_USDM
        self.keys = keys
        self.limiter = limiter
        self.listen_keys = listen_keys
        self.conns: set[Conn] = set()
        self.subs: dict[str, set[Conn]] = {}
        self._published: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
        self._sub_ids = 0
        self.max_inbound = 5 if spot else 10
        self.heartbeat = 20.0 if spot else 180.0
        self._held: dict[str, list[tuple[Conn, str]]] = {}  # account -> user frames kept back (IOC ordering)
        self._unlisten = [self.core.listen_book(self._on_book), self.core.listen(self._on_event)]
        self._expiry_task: asyncio.Task | None = None
        self._mark_task: asyncio.Task | None = None
        self._mark_sent: dict[str, int] = {}  # mark stream name -> world ms of its last push

    def routes(self) -> list[web.RouteDef]:
        if self.spot:
            return [web.get("/ws", self._raw("spot")), web.get("/ws/{streams:.*}", self._raw("spot")),
                    web.get("/stream", self._combined("spot")), web.get("/ws-api/v3", self._ws_api)]
        out = [web.get("/private/ws", self._private), web.get("/private/ws/{key}", self._private),
               web.get("/ws", self._raw("legacy")), web.get("/ws/{streams:.*}", self._raw("legacy")),
               web.get("/stream", self._combined("legacy"))]
        for path in ("public", "market"):
            out += [web.get(f"/{path}/ws", self._raw(path)), web.get(f"/{path}/ws/{{streams:.*}}", self._raw(path)),
                    web.get(f"/{path}/stream", self._combined(path))]
        return out

    async def start(self) -> None:
        if not self.spot:
            self._expiry_task = asyncio.create_task(self._expire_listen_keys())
            self._mark_task = asyncio.create_task(self._mark_pulse())

    async def stop(self) -> None:
        for u in self._unlisten:
            u()
        for task in (self._expiry_task, self._mark_task):
            if task:
                task.cancel()
        for c in list(self.conns):
            await c.ws.close()

    # ------------------------------------------------------------------ connections
    def _raw(self, path: str):
        async def handler(request: web.Request) -> web.StreamResponse:
            names = [s for s in request.match_info.get("streams", "").split("/") if s]
            if path == "legacy" and len(names) == 1 and self.listen_keys.account(names[0], self._now()):
                return await self._private(request, names[0])
            return await self._serve(request, path, names, combined=False)
        return handler

    def _combined(self, path: str):
        async def handler(request: web.Request) -> web.StreamResponse:
            names = [s for s in request.query.get("streams", "").split("/") if s]
            return await self._serve(request, path, names, combined=True)
        return handler

    def _now(self) -> int:
        return self.ctx.server_time_ms()

    async def _open(self, request: web.Request, conn_path: str) -> Conn:
        ws = web.WebSocketResponse(heartbeat=self.heartbeat)
        await ws.prepare(request)
        conn = Conn(ws, conn_path)
        conn.task = asyncio.create_task(self._sender(conn))
        self.conns.add(conn)
        return conn

    async def _close(self, conn: Conn) -> None:
        self.conns.discard(conn)
        for name in conn.streams:
            self.subs.get(name, set()).discard(conn)
        if conn.task:
            if not conn.ws.closed and not conn.task.done():
                conn.push(None)  # flush what is queued (replies to the last requests), then close
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(conn.task), 1.0)
            conn.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await conn.task
        await conn.ws.close()

    async def _sender(self, conn: Conn) -> None:
        faults = self.ctx.faults
        shaper = FrameShaper(faults, self.venue)
        while True:
            text = await conn.queue.get()
            if text is None:
                await conn.ws.close()
                return
            if isinstance(text, asyncio.Future):
                if not text.done():
                    text.set_result(None)
                continue
            if conn.stalled:
                continue
            frames = shaper.frames(text)
            if frames == "drop":
                await conn.ws.close()
                return
            if frames == "stall":
                conn.stalled = True
                continue
            await faults.delay()
            for frame in frames:
                if conn.ws.closed:
                    return
                try:
                    await conn.ws.send_str(frame)
                except (ConnectionError, RuntimeError):
                    return

    def _too_fast(self, conn: Conn) -> bool:
        now = time.monotonic()
        conn.inbound.append(now)
        recent = sum(1 for t in conn.inbound if now - t < 1.0)
        return recent > self.max_inbound

    async def _serve(self, request: web.Request, path: str, names: list[str], combined: bool) -> web.StreamResponse:
        conn = await self._open(request, path)
        conn.combined = combined
        self._subscribe(conn, names)
        try:
            async for msg in conn.ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                if self._too_fast(conn):
                    break
                self._control(conn, msg.data)
        finally:
            await self._close(conn)
        return conn.ws

    def _control(self, conn: Conn, text: str) -> None:
        try:
            req = json.loads(text)
        except ValueError:
            conn.push(_DUMPS({"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1", "id": None}))
            return
        if not isinstance(req, dict):
            conn.push(_DUMPS({"code": 2, "msg": "Invalid request: request must be an object", "id": None}))
            return
        rid = req.get("id")
        if rid is not None and not (isinstance(rid, int) or (isinstance(rid, str) and len(rid) <= 36)):
            conn.push(_DUMPS({"code": 2, "msg": "Invalid request: invalid value for 'id'", "id": None}))
            return
        method, params = req.get("method"), req.get("params")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                conn.push(_DUMPS({"code": 2, "msg": "Invalid request: 'params' must be a list of streams",
                                  "id": rid}))
                return
            if method == "SUBSCRIBE":
                self._subscribe(conn, params)
            else:
                for name in params:
                    conn.streams.discard(name)
                    self.subs.get(name, set()).discard(conn)
            conn.push(_DUMPS({"result": None, "id": rid}))
        elif method == "LIST_SUBSCRIPTIONS":
            conn.push(_DUMPS({"result": sorted(conn.streams), "id": rid}))
        elif method == "SET_PROPERTY" and isinstance(params, list) and len(params) == 2 and params[0] == "combined":
            conn.combined = bool(params[1])
            conn.push(_DUMPS({"result": None, "id": rid}))
        elif method == "GET_PROPERTY" and params == ["combined"]:
            conn.push(_DUMPS({"result": conn.combined, "id": rid}))
        else:
            conn.push(_DUMPS({"code": 1, "msg": "Invalid request: unknown method or property", "id": rid}))

    def _subscribe(self, conn: Conn, names: list[str]) -> None:
        for name in names:
            conn.streams.add(name)
            if self._routed(conn.path, name):
                self.subs.setdefault(name, set()).add(conn)
                if _kind(name) == "depth":
                    self._reset_depth(name.split("@")[0])
                if not self.spot:
                    self._snapshot(conn, name)

    def _snapshot(self, conn: Conn, name: str) -> None:
        """USD-M: a new subscriber gets the stream's current state at once (book, depth, mark), so a
        client connecting between two replayed updates is not left without a price."""
        symbol, _, rest = name.partition("@")
        kind = _kind(name)
        now = self._now()
        if symbol == "!markPrice":
            payload: object = [wire.mark_event(x, now) for x in self.core.markets_of(self.venue) if x.is_perp and x.mark]
        else:
            m = next((x for x in self.core.markets_of(self.venue) if x.symbol.lower() == symbol), None)
            if m is None or not m.has_book:
                return
            if kind == "bookTicker":
                payload = wire.book_ticker(m, False, True, now)
            elif kind == "markPrice" and m.is_perp and m.mark:
                payload = wire.mark_event(m, now)
            elif kind == "depth":
                levels = rest[len("depth"):].split("@")[0]
                b, a = wire.depth_levels(m, int(levels) if levels in ("5", "10", "20") else m.depth_levels, False)
                payload = {"e": "depthUpdate", "E": now, "T": m.ts_ms, "s": m.symbol, "U": m.update_id,
                           "u": m.update_id, "pu": m.update_id - 1, "b": b, "a": a}
            else:
                return
        conn.push(_DUMPS({"stream": name, "data": payload}) if conn.combined else _DUMPS(payload))

    async def _mark_pulse(self) -> None:
        """``markPrice@1s`` every second and ``markPrice`` every 3 s of world time, whether or not the
        replay moved the mark (as the venue does). A replayed mark update also goes out at once."""
        clock = self.ctx.clock
        while True:
            now = clock.now_ms()
            if self.subs:
                self._publish_marks(now, due_only=True)
            nxt = now - now % 1000 + 1000
            wait = clock.wall_seconds_until(nxt) if isinstance(clock, ScaledClock) else 0.05
            await asyncio.sleep(max(wait, 0.005))  # [ate choice] at most ~200 pushes a wall second at high speed

    def _publish_marks(self, now: int, due_only: bool) -> None:
        stamp = self._now()
        for m in self.core.markets_of(self.venue):
            if not m.is_perp or not m.mark:
                continue
            s = m.symbol.lower()
            for name, every in ((f"{s}@markPrice", 3000), (f"{s}@markPrice@1s", 1000)):
                if self.subs.get(name) and not (due_only and now - self._mark_sent.get(name, -every) < every):
                    self._mark_sent[name] = now
                    self._publish(name, wire.mark_event(m, stamp))
        for name, every in (("!markPrice@arr", 3000), ("!markPrice@arr@1s", 1000)):
            if self.subs.get(name) and not (due_only and now - self._mark_sent.get(name, -every) < every):
                self._mark_sent[name] = now
                self._publish(name, [wire.mark_event(x, stamp) for x in self.core.markets_of(self.venue)
                                     if x.is_perp and x.mark])

    def _reset_depth(self, symbol_lower: str) -> None:
        """Diffs are relative to the book as it is now (what a REST snapshot shows): every current
        subscriber already holds exactly that state, so resetting it is safe."""
        for m in self.core.markets_of(self.venue):
            if m.symbol.lower() == symbol_lower:
                self._published[m.symbol] = (dict(wire.gross_levels(m, True, m.depth_levels)),
                                             dict(wire.gross_levels(m, False, m.depth_levels)))

    def _routed(self, path: str, name: str) -> bool:
        if path == "spot":
            return True
        kind = _kind(name)
        if path in ("public", "legacy"):
            return kind in PUBLIC_KINDS
        return path == "market" and kind not in PUBLIC_KINDS

    def _publish(self, name: str, payload: object) -> None:
        conns = self.subs.get(name)
        if not conns:
            return
        raw = wrapped = None
        for c in conns:
            if c.combined:
                wrapped = wrapped or _DUMPS({"stream": name, "data": payload})
                c.push(wrapped)
            else:
                raw = raw or _DUMPS(payload)
                c.push(raw)

    # ------------------------------------------------------------------ market data
    def _on_book(self, m: Market) -> None:
        if m.venue != self.venue:
            return
        if self.listen_keys.by_key and not self.spot:
            self._expire_now()
        if not self.subs:
            return
        if m.candles:
            self._kline_progress(m)
        s = m.symbol.lower()
        name = f"{s}@bookTicker"
        book = bool(self.subs.get(name))
        depth_names = [n for n in self.subs if n.startswith(f"{s}@depth") and self.subs[n]]
        tickers = [n for n in (f"{s}@ticker", f"{s}@miniTicker") if self.subs.get(n)]
        if not (book or depth_names or tickers):
            return  # nothing to publish: no fault is spent on this update
        faults = self.ctx.faults
        if faults.stale(self.venue):
            return
        now = self._now()
        spot = self.spot
        bad = faults.book_fault(self.venue, m.symbol) if book or depth_names else None
        if book:
            ticker = wire.book_ticker(m, spot, True, now)
            self._publish(name, poison_book(ticker, bad) if bad else ticker)
        if depth_names:
            self._depth(m, s, depth_names, now, bad)
        for tname in tickers:
            t = wire.ticker_stream(m, spot, self.ctx.clock.now_ms())
            if tname.endswith("miniTicker"):
                t = {k: t[k] for k in ("E", "s", "c", "o", "h", "l", "v", "q")} | {"e": "24hrMiniTicker"}
            self._publish(tname, t)

    def _depth(self, m: Market, s: str, names: list[str], now: int, bad: str | None) -> None:
        bids = dict(wire.gross_levels(m, True, m.depth_levels))
        asks = dict(wire.gross_levels(m, False, m.depth_levels))
        prev_b, prev_a = self._published.get(m.symbol, ({}, {}))
        self._published[m.symbol] = (bids, asks)
        gap = self.ctx.faults.depth_gap(self.venue)
        spot = self.spot
        for name in names:
            tail = name[len(s) + len("@depth"):]
            levels = tail.split("@")[0]
            if levels in ("5", "10", "20"):
                n = int(levels)
                b, a = wire.depth_levels(m, n, spot)
                if spot:
                    payload = {"lastUpdateId": m.update_id, "bids": b, "asks": a}
                else:
                    payload = {"e": "depthUpdate", "E": now, "T": m.ts_ms, "s": m.symbol, "U": m.update_id,
                               "u": m.update_id, "pu": m.update_id - 1, "b": b, "a": a}
                self._publish(name, poison_book(payload, bad) if bad else payload)
                continue
            if gap:
                continue

            def side(cur: dict[int, int], prev: dict[int, int]) -> list[list[str]]:
                rows = [[wire.fnum(t * m.tick, spot), wire.fnum(q * m.step, spot)] for t, q in cur.items()]
                rows += [[wire.fnum(t * m.tick, spot), wire.fnum(m.step * 0, spot)] for t in prev if t not in cur]
                return rows

            payload = {"e": "depthUpdate", "E": now}
            if not spot:
                payload["T"] = m.ts_ms
            payload |= {"s": m.symbol, "U": m.update_id, "u": m.update_id}
            if not spot:
                payload["pu"] = m.update_id - 1
            payload |= {"b": side(bids, prev_b), "a": side(asks, prev_a)}
            self._publish(name, poison_book(payload, bad) if bad else payload)

    def _on_event(self, kind: str, payload: object) -> None:
        if kind == TRADE:
            t: PublicTrade = payload  # type: ignore[assignment]
            if t.market.venue == self.venue and self.subs:
                s = t.market.symbol.lower()
                for agg, name in ((False, f"{s}@trade"), (True, f"{s}@aggTrade")):
                    if self.subs.get(name):
                        self._publish(name, wire.trade_event(t, self.spot, agg))
        elif kind == KLINE:
            k: KlineClosed = payload  # type: ignore[assignment]
            if k.market.venue == self.venue:
                self._klines(k)
        elif kind == MARK and not self.spot:
            mk = payload.market  # type: ignore[attr-defined]
            if mk.venue == self.venue and self.subs:
                self._publish_marks(self.ctx.clock.now_ms(), due_only=False)
        elif kind in (ORDER, BALANCE, POSITION):
            self._user_event(kind, payload)

    def _kline_progress(self, m: Market) -> None:
        """``x:false`` updates of the data's own interval from the replayed path (the path visits the
        candle's open, extremes and close, so the update before the close shows its real range)."""
        span = m.candles[-1].interval_ms
        interval = next((name for name, ms in klines.FIXED_MS.items() if ms == span), None)
        name = f"{m.symbol.lower()}@kline_{interval}"
        if interval is None or not self.subs.get(name) or not m.bar[0]:
            return
        start, o, h, lo = m.bar
        tick = m.tick_f
        bar = Candle(start, o * tick, h * tick, lo * tick, (m.bid_t + m.ask_t) // 2 * tick, 0.0, span)
        self._publish(name, wire.kline_event(m, bar, interval, self._now(), False, self.spot))

    def _klines(self, k: KlineClosed) -> None:
        """Every closed candle updates the row of each subscribed interval that holds it: ``x:false``
        while the row is forming, ``x:true`` exactly once, with the candle that ends it."""
        m, c = k.market, k.candle
        prefix = f"{m.symbol.lower()}@kline_"
        names = [n for n, conns in self.subs.items() if conns and n.startswith(prefix)]
        now = self._now()
        for name in names:
            interval = name[len(prefix):]
            if interval not in klines.BINANCE_SPOT or (not self.spot and interval == "1s"):
                continue
            rows = klines.klines(m.candles, interval, c.open_ms, c.open_ms)
            if not rows or not rows[-1].open_ms <= c.open_ms < rows[-1].close_ms:
                continue  # the candle is coarser than the interval
            row = rows[-1]
            self._publish(name, wire.kline_event(m, row, interval, now, c.close_ms >= row.close_ms, self.spot))

    # ------------------------------------------------------------------ user data
    def _user_event(self, kind: str, payload: object) -> None:
        venue = getattr(payload, "venue", None) or getattr(getattr(payload, "order", None), "venue", None)
        if venue != self.venue:
            return
        account = payload.account  # type: ignore[attr-defined]
        targets = [c for c in self.conns if c.account == account or account in c.subscriptions.values()]
        if not targets:
            return
        now = self._now()
        event = None
        if self.spot:
            events = []
            if kind == ORDER:
                e: OrderEvent = payload  # type: ignore[assignment]
                events = [wire.execution_report(e.order, e.exec_type, e.fill, now)]
            elif kind == BALANCE:
                b: BalanceEvent = payload  # type: ignore[assignment]
                events = [wire.account_position(list(b.assets), now)]
                if b.reason in TRANSFERS:
                    events.insert(0, wire.balance_update(b.assets[0].asset, b.delta, b.ts_ms, now))
            for event in events:
                for c in targets:
                    for sid, acct in c.subscriptions.items():
                        if acct == account:
                            self._user_push(account, c, _DUMPS({"subscriptionId": sid, "event": event}))
            return
        if kind == ORDER:
            e = payload  # type: ignore[assignment]
            event = wire.order_trade_update(e.order, e.exec_type, e.fill, now)
        elif kind == POSITION:
            p: PositionEvent = payload  # type: ignore[assignment]
            quote = self.core.markets[(self.venue, p.position.symbol)].instrument.quote
            bal = self.core.balances(account, self.venue).get(quote, Balance(quote))
            event = wire.account_update(p.reason, [bal], [p.position], now)
        elif kind == BALANCE:
            b = payload  # type: ignore[assignment]
            if b.reason == "ORDER":
                return  # fills report through POSITION; releases of order margin are not account updates
            event = wire.account_update(b.reason, list(b.assets), [], now,
                                        b.delta if b.reason in TRANSFERS else Decimal(0))
        if event is not None:
            text = _DUMPS(event)
            for c in targets:
                if c.path == "private":
                    self._user_push(account, c, text)

    # ------------------------------------------------------------------ IOC reply ordering (StreamGate)
    def _user_push(self, account: str, conn: Conn, text: str) -> None:
        held = self._held.get(account)
        if held is None:
            conn.push(text)
        else:
            held.append((conn, text))

    def hold(self, account: str) -> None:
        self._held.setdefault(account, [])

    def release(self, account: str) -> None:
        for conn, text in self._held.pop(account, []):
            if conn in self.conns:
                conn.push(text)

    async def flushed(self, account: str) -> None:
        marks = []
        for c in self.conns:
            if c.account == account or account in c.subscriptions.values():
                mark = asyncio.get_running_loop().create_future()
                c.push(mark)
                marks.append(mark)
        await asyncio.gather(*marks)

    async def _private(self, request: web.Request, key: str | None = None) -> web.StreamResponse:
        key = key or request.match_info.get("key") or request.query.get("listenKey", "")
        account = self.listen_keys.account(key, self._now())
        if account is None:
            return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
        conn = await self._open(request, "private")
        conn.account, conn.listen_key = account, key
        try:
            async for msg in conn.ws:
                if msg.type == WSMsgType.TEXT and self._too_fast(conn):
                    break
        finally:
            await self._close(conn)
        return conn.ws

    async def _expire_listen_keys(self) -> None:
        """Checked on every replayed book update and, while the replay is idle, once a second."""
        while True:
            await asyncio.sleep(1.0)
            self._expire_now()

    def _expire_now(self) -> None:
        now = self._now()
        for key in self.listen_keys.expire(now):
            for c in [c for c in self.conns if c.listen_key == key]:
                c.push(_DUMPS({"e": "listenKeyExpired", "E": now, "listenKey": key}))
                c.push(None)

    # ------------------------------------------------------------------ Spot WS API
    async def _ws_api(self, request: web.Request) -> web.StreamResponse:
        conn = await self._open(request, "wsapi")
        ip = request.remote or "?"
        try:
            async for msg in conn.ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                conn.push(_DUMPS(self._ws_api_call(conn, ip, msg.data)))
        finally:
            await self._close(conn)
        return conn.ws

    def _ws_api_call(self, conn: Conn, ip: str, text: str) -> dict:
        now = self._now()
        rid = None
        weights = {"ping": 1, "time": 1, "userDataStream.subscribe.signature": 2, "userDataStream.unsubscribe": 2,
                   "session.subscriptions": 2}
        try:
            try:
                req = json.loads(text)
                rid, method, params = req.get("id"), req.get("method"), req.get("params") or {}
            except (ValueError, AttributeError):
                raise ApiError(400, -1102, "Malformed request.") from None
            weight = weights.get(method, 1)
            self.limiter.admit(ip, weight, now)
            self.limiter.charge(ip, weight, now)
            if method == "ping":
                result: object = {}
            elif method == "time":
                result = {"serverTime": now}
            elif method == "userDataStream.subscribe.signature":
                cred = self.keys.lookup(params.get("apiKey"))
                verify_ws_signature(cred.secret, params)
                check_timing({k: str(v) for k, v in params.items()}, now)
                if cred.account in conn.subscriptions.values():
                    raise ApiError(400, -1210, "This account is already subscribed on this connection.")
                sid = self._sub_ids
                self._sub_ids += 1
                conn.subscriptions[sid] = cred.account
                result = {"subscriptionId": sid}
            elif method == "userDataStream.unsubscribe":
                sid = params.get("subscriptionId")
                if sid is None:
                    conn.subscriptions.clear()
                elif conn.subscriptions.pop(sid, None) is None:
                    raise ApiError(400, -2035, "User Data Stream subscription not active.")
                result = {}
            elif method == "session.subscriptions":
                result = [{"subscriptionId": sid} for sid in conn.subscriptions]
            else:
                raise ApiError(400, -1102, f"Unknown method '{method}'.")
            status, body = 200, {"result": result}
        except ApiError as exc:
            status, body = exc.status, {"error": {"code": exc.code, "msg": exc.msg}}
            if exc.status in (418, 429):
                body["error"]["data"] = {"retryAfter": now + int(exc.headers.get("Retry-After", "1")) * 1000}
        lim = self.limiter.weight_limit
        return {"id": rid, "status": status, **body,
                "rateLimits": [lim.as_json() | {"count": self.limiter.used_weight(ip, now)}]}
