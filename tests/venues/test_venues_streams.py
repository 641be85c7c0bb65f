"""WebSocket lifecycle against a local server: decode, reconnect with backfill, stale detection,
planned 24 h reconnect, and user-data subscription frames."""

import asyncio
import json
from decimal import Decimal

from aiohttp import WSMsgType, web
from venues_support import API_KEY, SECRET

from ate.model import MarketKind, OrderStatus
from ate.venues.binance.client import BinanceClient, BinanceUrls
from ate.venues.binance.signing import hmac_signature
from ate.venues.clock import ManualClock

M = 60_000
T0 = 1_700_000_040_000  # minute boundary


def kline(i: int, closed: bool = True) -> str:
    t = T0 + i * M
    k = {"t": t, "T": t + M - 1, "s": "BTCUSDT", "i": "1m", "o": "1", "c": str(2 + i), "h": "3", "l": "0.5",
         "v": "10", "x": closed}
    return json.dumps({"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": t, "s": "BTCUSDT", "k": k}})


def book(u: int) -> str:
    return json.dumps({"stream": "btcusdt@bookTicker",
                       "data": {"u": u, "s": "BTCUSDT", "b": "100.1", "B": "1", "a": "100.2", "A": "2"}})


def rest_kline(i: int) -> list:
    t = T0 + i * M
    return [t, "1", "3", "0.5", str(2 + i), "10", t + M - 1, "0", 1, "0", "0", "0"]


class Sink:
    def __init__(self):
        self.books, self.candles, self.orders, self.gaps = [], [], [], 0
        self.got = asyncio.Event()

    def on_book(self, b):
        self.books.append(b)
        self.got.set()

    def on_candle(self, venue, symbol, c):
        self.candles.append(c)
        self.got.set()

    def on_mark(self, m): ...

    def on_trade(self, t): ...

    def on_depth(self, d): ...

    def on_order(self, order, fill):
        self.orders.append((order, fill))
        self.got.set()

    def on_gap(self, venue):
        self.gaps += 1


async def until(predicate, clock=None, step_ms=1000, rounds=2000):
    for _ in range(rounds):
        if predicate():
            return
        if clock is not None:
            await clock.advance(step_ms)
        await asyncio.sleep(0.002)  # let socket I/O happen; virtual time only moves by ``advance``
    raise AssertionError("condition not reached")


def ws_route(venue, script):
    """Serve ``script(ws, n)`` on /stream for the n-th connection (0-based)."""
    conns = []

    async def handler(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conns.append(request.query.get("streams"))
        await script(ws, len(conns) - 1)
        return ws
    venue.route("GET", "/stream", handler)
    return conns


async def test_reconnect_backfills_every_missed_closed_candle(venue):
    async def script(ws, n):
        if n == 0:
            await ws.send_str(book(1))
            for i in (0, 1):
                await ws.send_str(kline(i))
            await ws.close()  # dropped: minutes 2..4 close while we are away
        else:
            await ws.send_str(kline(5))  # stream resumes (duplicate of the backfill's last one)
            await ws.send_str(kline(6, closed=False))  # still open: not a candle yet
            await ws.send_str(kline(7))  # minute 6 was skipped in-stream: backfilled too
            await venue.hang.wait()
    conns = ws_route(venue, script)
    venue.route("GET", "/api/v3/klines", _klines_handler)
    clock = ManualClock(T0 + 8 * M)
    client = BinanceClient(MarketKind.SPOT, BinanceUrls(venue.url, venue.url), clock=clock)
    sink = Sink()
    stream = client.market_stream(["BTCUSDT"], sink)
    task = asyncio.create_task(stream.run())
    await until(lambda: len(sink.candles) >= 8, clock)
    assert [c.open_ms for c in sink.candles] == [T0 + i * M for i in range(8)]
    assert (sink.books[0].bid, sink.books[0].ask) == (Decimal("100.1"), Decimal("100.2"))
    assert T0 + 8 * M <= sink.books[0].ts_ms <= clock.now_ms()  # spot bookTicker has no E: receive time
    assert conns == ["btcusdt@bookTicker/btcusdt@kline_1m"] * 2
    assert stream.connections[0].connects == 2
    await stream.close()
    await task
    await client.close()


async def _klines_handler(request):
    start, end = int(request.query["startTime"]), int(request.query["endTime"])
    rows = [rest_kline(i) for i in range(10) if start <= T0 + i * M <= end]
    return web.json_response(rows, headers={"X-MBX-USED-WEIGHT-1M": "2"})


async def test_stale_stream_is_dropped_and_resubscribed(venue):
    async def script(ws, n):
        await ws.send_str(book(n))
        await venue.hang.wait()  # then silence
    conns = ws_route(venue, script)
    clock = ManualClock(T0)
    client = BinanceClient(MarketKind.SPOT, BinanceUrls(venue.url, venue.url), clock=clock)
    sink = Sink()
    stream = client.market_stream(["BTCUSDT"], sink, candles=False)
    conn = stream.connections[0]
    conn.close_timeout_s = 0.05  # the silent peer will not answer our close frame either
    task = asyncio.create_task(stream.run())
    await until(lambda: sink.books, None)
    await until(lambda: conn.connects == 2, clock)
    assert conn.stale_reconnects == 1 and len(conns) == 2
    await until(lambda: len(sink.books) == 2, None)
    await stream.close()
    await task
    await client.close()


async def test_planned_reconnect_before_24h_limit(venue):
    async def script(ws, n):
        while not ws.closed and not venue.hang.is_set():  # a lively stream: never stale
            await ws.send_str(book(n))
            await asyncio.sleep(0.002)
    ws_route(venue, script)
    clock = ManualClock(T0)
    client = BinanceClient(MarketKind.SPOT, BinanceUrls(venue.url, venue.url), clock=clock)
    stream = client.market_stream(["BTCUSDT"], Sink(), candles=False)
    conn = stream.connections[0]
    conn.stale_after_ms = 10**12
    conn.close_timeout_s = 0.05
    conn.watchdog_every_s = 600  # coarse checks keep the 23.5 h virtual advance cheap
    task = asyncio.create_task(stream.run())
    await until(lambda: conn.connects == 1, None)
    await clock.advance(int(23.5 * 3600 * 1000))
    await until(lambda: conn.connects == 2, None)
    assert conn.planned_reconnects == 1 and conn.stale_reconnects == 0
    await stream.close()
    await task
    await client.close()


async def test_spot_user_stream_subscribes_with_ws_api_signature(venue):
    frames = []

    async def ws_api(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        msg = await ws.receive()
        assert msg.type is WSMsgType.TEXT
        frame = json.loads(msg.data)
        frames.append(frame)
        params = frame["params"]
        payload = f"apiKey={params['apiKey']}&timestamp={params['timestamp']}"
        ok = hmac_signature(SECRET, payload) == params["signature"]
        await ws.send_json({"id": frame["id"], "status": 200 if ok else 400, "result": {"subscriptionId": 0}})
        report = {"e": "executionReport", "E": T0, "s": "BTCUSDT", "c": "ate-1", "S": "BUY", "o": "LIMIT",
                  "f": "GTC", "q": "0.5", "p": "100", "x": "TRADE", "X": "PARTIALLY_FILLED", "i": 9, "l": "0.2",
                  "z": "0.2", "L": "100", "n": "0.01", "N": "BNB", "T": T0, "t": 77, "m": False, "Z": "20"}
        await ws.send_json({"subscriptionId": 0, "event": report})
        await venue.hang.wait()
        return ws
    venue.route("GET", "/ws-api/v3", ws_api)
    from ate.venues.credentials import Credentials
    client = BinanceClient(MarketKind.SPOT, BinanceUrls(venue.url, venue.url, venue.url + "/ws-api/v3"),
                           Credentials(API_KEY, SECRET), clock=ManualClock(T0))
    sink = Sink()
    stream = client.user_stream(sink)
    task = asyncio.create_task(stream.run())
    await until(lambda: sink.orders, None)
    assert stream.subscribed.is_set()
    assert frames[0]["method"] == "userDataStream.subscribe.signature"
    order, fill = sink.orders[0]
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.client_order_id == "ate-1"
    assert fill.trade_id == "77" and str(fill.qty) == "0.2" and fill.fee_asset == "BNB"
    await stream.close()
    await task
    await client.close()


async def test_bad_frames_are_counted_and_server_shutdown_reconnects(venue):
    async def script(ws, n):
        if n == 0:
            await ws.send_str('{"stream":"btcusdt@bookTicker","data":{"u":"x"}}')  # malformed payload
            await ws.send_str("not json at all")
            await ws.send_str(json.dumps({"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 1}}))
        else:
            await ws.send_str(book(7))
        await venue.hang.wait()
    ws_route(venue, script)
    clock = ManualClock(T0)
    client = BinanceClient(MarketKind.SPOT, BinanceUrls(venue.url, venue.url), clock=clock)
    sink = Sink()
    stream = client.market_stream(["BTCUSDT"], sink, candles=False)
    conn = stream.connections[0]
    conn.close_timeout_s = 0.05
    task = asyncio.create_task(stream.run())
    await until(lambda: sink.books, None)
    assert conn.bad_messages == 2 and conn.planned_reconnects == 1 and conn.connects == 2
    assert sink.books[0].update_id == 7
    await stream.close()
    await task
    await client.close()


async def test_failed_backfill_is_retried_through_a_reconnect(venue):
    calls = []

    async def flaky_klines(request):
        calls.append(1)
        if len(calls) == 1:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        return await _klines_handler(request)

    async def script(ws, n):
        if n == 0:
            await ws.send_str(kline(0))
            await ws.send_str(kline(3))  # 1 and 2 missing; the first backfill attempt fails
        await venue.hang.wait()
    ws_route(venue, script)
    venue.route("GET", "/api/v3/klines", flaky_klines)
    clock = ManualClock(T0 + 5 * M)
    client = BinanceClient(MarketKind.SPOT, BinanceUrls(venue.url, venue.url), clock=clock)
    sink = Sink()
    stream = client.market_stream(["BTCUSDT"], sink, book=False)
    stream.connections[0].close_timeout_s = 0.05
    task = asyncio.create_task(stream.run())
    await until(lambda: len(sink.candles) >= 5, clock, step_ms=100)
    assert [c.open_ms for c in sink.candles] == [T0 + i * M for i in range(5)]  # 3 came back via REST
    assert len(calls) == 2 and stream.connections[0].connects == 2
    await stream.close()
    await task
    await client.close()


async def test_server_ping_is_answered_with_the_same_payload(venue):
    pongs = []

    async def handler(request):
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        await ws.ping(b"keepalive-42")
        msg = await ws.receive()
        pongs.append((msg.type, msg.data))
        await ws.send_str(book(1))
        await venue.hang.wait()
        return ws
    venue.route("GET", "/stream", handler)
    client = BinanceClient(MarketKind.SPOT, BinanceUrls(venue.url, venue.url), clock=ManualClock(T0))
    sink = Sink()
    stream = client.market_stream(["BTCUSDT"], sink, candles=False)
    stream.connections[0].close_timeout_s = 0.05
    task = asyncio.create_task(stream.run())
    await until(lambda: sink.books, None)
    assert pongs == [(WSMsgType.PONG, b"keepalive-42")]
    await stream.close()
    await task
    await client.close()


async def test_ws_api_429_pauses_the_venue_then_resubscribes(venue):
    seen = []

    async def ws_api(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        frame = json.loads((await ws.receive()).data)
        seen.append(clock.now_ms())
        if len(seen) == 1:
            await ws.send_json({"id": frame["id"], "status": 429, "error": {
                "code": -1003, "msg": "Too many requests", "data": {"retryAfter": T0 + 5000}}})
        else:
            await ws.send_json({"id": frame["id"], "status": 200, "result": {"subscriptionId": 0}})
        await venue.hang.wait()
        return ws
    venue.route("GET", "/ws-api/v3", ws_api)
    from ate.venues.credentials import Credentials
    clock = ManualClock(T0)
    client = BinanceClient(MarketKind.SPOT, BinanceUrls(venue.url, venue.url, venue.url + "/ws-api/v3"),
                           Credentials(API_KEY, SECRET), clock=clock)
    stream = client.user_stream(Sink())
    stream.conn.close_timeout_s = 0.05
    task = asyncio.create_task(stream.run())
    await until(lambda: stream.subscribed.is_set(), clock, step_ms=500)
    assert seen[0] < T0 + 5000 <= seen[1]  # the second subscription waited for retryAfter
    assert stream.errors == ["-1003: Too many requests"]
    await stream.close()
    await task
    await client.close()
