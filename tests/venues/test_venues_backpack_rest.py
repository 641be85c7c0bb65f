"""Backpack client against a local HTTP server that verifies Ed25519 signatures exactly as §8.2 says."""

import base64
import json
from decimal import Decimal

from aiohttp import web

from ate.model import Instrument, MarketKind, Order, OrderStatus, OrderType, Side, TimeInForce
from ate.venues.backpack.client import BackpackClient, BackpackUrls
from ate.venues.backpack.signing import instruction_for, public_key_from_seed, signing_string, verify
from ate.venues.base import Outcome
from ate.venues.clock import ManualClock
from ate.venues.credentials import Credentials

T0 = 1_735_689_600_000
SEED = base64.b64encode(bytes(range(32))).decode()
PUBLIC = public_key_from_seed(SEED)
SOL = Instrument("backpack", "SOL_USDC", "SOL", "USDC", MarketKind.SPOT, Decimal("0.01"), Decimal("0.01"),
                 min_qty=Decimal("0.01"))


def signed_ok(request: web.Request, body: str) -> bool:
    params = json.loads(body) if body else dict(request.query) or None
    message = signing_string(instruction_for(request.method, request.path), params,
                             int(request.headers["X-Timestamp"]), int(request.headers["X-Window"]))
    return request.headers["X-API-Key"] == PUBLIC and verify(PUBLIC, message, request.headers["X-Signature"])


def order_json(body: dict, status="New") -> dict:
    return {"id": "111", "clientId": body["clientId"], "symbol": body["symbol"], "side": body["side"],
            "orderType": body["orderType"], "price": body.get("price"), "quantity": body["quantity"],
            "executedQuantity": "0", "executedQuoteQuantity": "0", "timeInForce": "GTC",
            "postOnly": body.get("postOnly", False), "status": status, "createdAt": T0}


async def test_order_lifecycle_signed_and_parsed(venue):
    orders: dict[int, dict] = {}

    async def place(request):
        body = await request.text()
        if not signed_ok(request, body):
            return web.json_response({"code": "INVALID_CLIENT_REQUEST", "message": "Invalid signature"}, status=400)
        b = json.loads(body)
        orders[b["clientId"]] = b
        return web.json_response(order_json(b))

    async def cancel(request):
        body = await request.text()
        assert signed_ok(request, body)
        orders.pop(json.loads(body)["clientId"])
        return web.Response(status=202)

    async def query(request):
        assert signed_ok(request, "")
        b = orders.get(int(request.query["clientId"]))
        if b is None:
            return web.json_response({"code": "RESOURCE_NOT_FOUND", "message": "Order not found"}, status=404)
        return web.json_response(order_json(b))

    async def history(request):
        assert signed_ok(request, "")
        return web.json_response([])

    venue.route("POST", "/api/v1/order", place)
    venue.route("DELETE", "/api/v1/order", cancel)
    venue.route("GET", "/api/v1/order", query)
    venue.route("GET", "/wapi/v1/history/orders", history)
    c = BackpackClient(BackpackUrls(venue.url, venue.url), Credentials(PUBLIC, SEED),
                       clock=ManualClock(T0, auto_advance=True))
    o = Order("ate-dir-abc", "backpack", "SOL_USDC", Side.SELL, OrderType.LIMIT, Decimal("1.519"),
              Decimal("180.501"), tif=TimeInForce.POST_ONLY)
    result = await c.place_order(o, SOL)
    assert result.outcome is Outcome.ACCEPTED, result
    sent = json.loads(venue.seen[-1][3])
    assert sent["side"] == "Ask" and sent["price"] == "180.51" and sent["quantity"] == "1.51"
    assert sent["postOnly"] is True and isinstance(sent["clientId"], int)
    assert result.order.client_order_id == "ate-dir-abc"  # uint32 clientId mapped back
    assert result.order.status is OrderStatus.SUBMITTED and result.order.venue_order_id == "111"
    found = await c.query_order("SOL_USDC", "ate-dir-abc")
    assert found is not None and found.price == Decimal("180.51")
    cancelled = await c.cancel_order("SOL_USDC", "ate-dir-abc")
    assert cancelled.outcome is Outcome.ACCEPTED and cancelled.order is None  # 202: accepted, not executed
    assert await c.query_order("SOL_USDC", "ate-dir-abc") is None  # 404, and not in history either
    await c.close()


async def test_rejection_codes_and_unknowns(venue):
    venue.json("POST", "/api/v1/order", {"code": "INSUFFICIENT_FUNDS", "message": "Insufficient funds"},
               status=400)
    c = BackpackClient(BackpackUrls(venue.url, venue.url), Credentials(PUBLIC, SEED),
                       clock=ManualClock(T0, auto_advance=True))
    o = Order("ate-x-1", "backpack", "SOL_USDC", Side.BUY, OrderType.LIMIT, Decimal("1"), Decimal("100"))
    r = await c.place_order(o, SOL)
    assert (r.outcome, r.code) == (Outcome.REJECTED, "INSUFFICIENT_FUNDS")
    venue.json("POST", "/api/v1/order", {"code": "TOO_MANY_REQUESTS", "message": "slow down"}, status=429)
    r = await c.place_order(o, SOL)
    assert r.outcome is Outcome.UNKNOWN
    assert c.limiter.paused_until_ms == T0 + 1000  # no Retry-After documented: back off from 1 s
    venue.json("POST", "/api/v1/order", {"code": "SERVER_ERROR", "message": "boom"}, status=500)
    assert (await c.place_order(o, SOL)).outcome is Outcome.UNKNOWN
    assert venue.count("POST", "/api/v1/order") == 3
    await c.close()


async def test_market_data_and_account_parsing(venue):
    venue.json("GET", "/api/v1/markets", [
        {"symbol": "BTC_USDC_PERP", "baseSymbol": "BTC", "quoteSymbol": "USDC", "marketType": "PERP",
         "filters": {"price": {"minPrice": "0.1", "maxPrice": None, "tickSize": "0.1"},
                     "quantity": {"minQuantity": "0.0001", "maxQuantity": None, "stepSize": "0.0001"}},
         "fundingInterval": 3600000, "orderBookState": "Open"},
        {"symbol": "X_RFQ", "baseSymbol": "X", "quoteSymbol": "USDC", "marketType": "RFQ", "filters": {}}])
    venue.json("GET", "/api/v1/depth", {"asks": [["101.5", "2"], ["102", "1"]], "bids": [["99", "4"], ["100", "3"]],
                                        "lastUpdateId": "77", "timestamp": T0 * 1000})
    venue.json("GET", "/api/v1/klines", [
        {"start": "2025-01-01 00:00:00", "end": "2025-01-01 00:01:00", "open": "1", "high": "2", "low": "0.5",
         "close": "1.5", "volume": "10", "quoteVolume": "15", "trades": "3"}])
    venue.json("GET", "/api/v1/capital", {"USDC": {"available": "100.5", "locked": "1", "staked": "0"}})
    venue.json("GET", "/api/v1/time", T0)
    c = BackpackClient(BackpackUrls(venue.url, venue.url), Credentials(PUBLIC, SEED),
                       clock=ManualClock(T0, auto_advance=True))
    (inst,) = await c.instruments()
    assert inst.kind is MarketKind.PERP and inst.tick_size == Decimal("0.1") and inst.max_price == 0
    book = await c.book_ticker("SOL_USDC")
    assert (book.bid, book.ask, book.update_id, book.ts_ms) == (Decimal("100"), Decimal("101.5"), 77, T0)
    (k,) = await c.klines("SOL_USDC", "1m", T0, T0 + 60_000)
    assert k.open_ms == 1_735_689_600_000 and k.close == 1.5
    assert venue.seen[-1][2]["startTime"] == str(T0 // 1000)  # seconds on the wire
    bal = await c.balances()
    assert bal["USDC"].free == Decimal("100.5") and bal["USDC"].locked == Decimal("1")
    assert await c.sync_clock() == 0
    await c.close()
