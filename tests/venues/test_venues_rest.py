"""REST transport against a real local HTTP server: signing on the wire, weights, 429, timeouts,
three-outcome orders, and clock skew refusal."""

from decimal import Decimal

import pytest
from aiohttp import web
from venues_support import API_KEY, SECRET, binance_signature_ok

from ate.model import FilterError, Instrument, MarketKind, Order, OrderType, Side
from ate.venues.base import Outcome
from ate.venues.binance.client import BinanceClient, BinanceUrls
from ate.venues.clock import ManualClock
from ate.venues.credentials import Credentials
from ate.venues.errors import ClockSkewError

T0 = 1_700_000_040_000  # a minute boundary
BTC = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, Decimal("0.01"), Decimal("0.00001"),
                 min_qty=Decimal("0.00001"), min_notional=Decimal("5"))


def client(venue, clock, **kw) -> BinanceClient:
    return BinanceClient(MarketKind.SPOT, BinanceUrls(venue.url, venue.url), Credentials(API_KEY, SECRET),
                         clock=clock, **kw)


def order(coid="ate-t-1", price="50000.004", qty="0.0012345") -> Order:
    return Order(coid, "binance", "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal(qty), Decimal(price),
                 created_ms=T0)


def order_row(coid: str, status="NEW") -> dict:
    return {"symbol": "BTCUSDT", "orderId": 42, "orderListId": -1, "clientOrderId": coid, "transactTime": T0,
            "price": "50000.00", "origQty": "0.00123", "executedQty": "0", "cummulativeQuoteQty": "0",
            "status": status, "timeInForce": "GTC", "type": "LIMIT", "side": "BUY"}


async def test_order_is_rounded_signed_and_accepted(venue):
    async def place(request: web.Request) -> web.Response:
        body = await request.text()
        if not binance_signature_ok(request, body):
            return web.json_response({"code": -1022, "msg": "Signature for this request is not valid."}, status=400)
        return web.json_response(order_row(request.query["newClientOrderId"]),
                                 headers={"X-MBX-USED-WEIGHT-1M": "17", "X-MBX-ORDER-COUNT-10S": "3"})
    venue.route("POST", "/api/v3/order", place)
    clock = ManualClock(T0, auto_advance=True)
    c = client(venue, clock)
    result = await c.place_order(order(), BTC)
    assert result.outcome is Outcome.ACCEPTED
    assert result.order.venue_order_id == "42" and result.order.client_order_id == "ate-t-1"
    _, _, query, _ = venue.seen[-1]
    assert query["price"] == "50000"  # BUY floors to the 0.01 tick; fmt trims zeros
    assert query["quantity"] == "0.00123"  # quantity rounds toward zero to the step
    assert query["timestamp"] == str(T0) and query["recvWindow"] == "5000"
    assert c.limiter.weight["1M"].used == 17 and c.limiter.orders["10S"].used == 3
    await c.close()


async def test_filter_failure_is_local_and_nothing_is_sent(venue):
    c = client(venue, ManualClock(T0, auto_advance=True))
    with pytest.raises(FilterError):
        await c.place_order(order(qty="0.00005"), BTC)  # notional 2.5 < 5
    assert venue.seen == []
    await c.close()


async def test_timed_out_order_is_unknown_never_resent_and_resolved_by_client_id(venue):
    placed: list[str] = []

    async def slow_place(request: web.Request) -> web.Response:
        placed.append(request.query["newClientOrderId"])  # the venue got it ...
        await venue.hang.wait()  # ... but the answer never arrives
        return web.Response(status=599)

    async def query(request: web.Request) -> web.Response:
        assert binance_signature_ok(request, "")
        coid = request.query["origClientOrderId"]
        if coid in placed:
            return web.json_response(order_row(coid))
        return web.json_response({"code": -2013, "msg": "Order does not exist."}, status=400)

    venue.route("POST", "/api/v3/order", slow_place)
    venue.route("GET", "/api/v3/order", query)
    clock = ManualClock(T0, auto_advance=True)
    c = client(venue, clock, timeout_s=0.2)
    o = order()
    result = await c.place_order(o, BTC)
    assert result.outcome is Outcome.UNKNOWN
    assert venue.count("POST", "/api/v3/order") == 1  # no blind resubmission
    resolved = await c.resolve(o)
    assert resolved.outcome is Outcome.ACCEPTED and resolved.order.client_order_id == o.client_order_id
    assert clock.now_ms() >= T0 + 5000  # waited out the recvWindow before trusting the answer
    assert venue.count("POST", "/api/v3/order") == 1
    never_sent = order("ate-t-2")
    assert (await c.resolve(never_sent)).outcome is Outcome.REJECTED
    await c.close()


@pytest.mark.parametrize(("status", "code", "outcome"), [
    (400, -2010, Outcome.REJECTED),
    (503, None, Outcome.UNKNOWN),
    (500, None, Outcome.UNKNOWN),
    (400, -1007, Outcome.UNKNOWN),
    (429, -1015, Outcome.UNKNOWN),
])
async def test_order_outcome_classification(venue, status, code, outcome):
    venue.json("POST", "/api/v3/order", {"code": code, "msg": "x"} if code else "oops", status=status,
               headers={"Retry-After": "3"} if status == 429 else None)
    clock = ManualClock(T0, auto_advance=True)
    c = client(venue, clock)
    result = await c.place_order(order(), BTC)
    assert result.outcome is outcome
    assert result.code == code
    assert venue.count("POST", "/api/v3/order") == 1
    if status == 429:
        assert c.limiter.paused_until_ms == T0 + 3000
    await c.close()


async def test_idempotent_get_retries_5xx_with_backoff(venue):
    calls = []

    async def flaky(request):
        calls.append(1)
        if len(calls) < 3:
            return web.json_response("busy", status=502)
        return web.json_response({"serverTime": T0})
    venue.route("GET", "/api/v3/time", flaky)
    clock = ManualClock(T0, auto_advance=True)
    c = client(venue, clock)
    assert await c.server_time_ms() == T0
    assert len(calls) == 3
    await c.close()


async def test_429_pauses_venue_for_retry_after_then_retries(venue):
    calls = []

    async def limited(request):
        calls.append(clockref[0].now_ms())
        if len(calls) == 1:
            return web.json_response({"code": -1003, "msg": "Too much request weight used"}, status=429,
                                     headers={"Retry-After": "7", "X-MBX-USED-WEIGHT-1M": "6001"})
        return web.json_response({"serverTime": T0}, headers={"X-MBX-USED-WEIGHT-1M": "1"})
    clock = ManualClock(T0 + 1000, auto_advance=True)
    clockref = [clock]
    venue.route("GET", "/api/v3/time", limited)
    c = client(venue, clock)
    await c.server_time_ms()
    # The retry waited for Retry-After and then for the minute window (6001 used) to reset.
    assert calls[1] >= calls[0] + 7000
    assert calls[1] >= T0 + 60_000
    assert 418 not in c.rest.status_counts
    await c.close()


async def test_weight_header_reconciliation_throttles_before_the_limit(venue):
    times = []

    async def time_handler(request):
        times.append(clock.now_ms())
        return web.json_response({"serverTime": T0}, headers={"X-MBX-USED-WEIGHT-1M": "5399"})
    venue.route("GET", "/api/v3/time", time_handler)
    clock = ManualClock(T0 + 30_000, auto_advance=True)
    c = client(venue, clock)
    await c.server_time_ms()
    await c.server_time_ms()  # 5399 + 1 = 5400 = 90 % of 6000: still allowed
    await c.server_time_ms()  # would exceed: waits for the next minute window
    assert times[0] == times[1] == T0 + 30_000
    assert times[2] == T0 + 60_000
    await c.close()


async def test_clock_skew_beyond_recv_window_refuses_to_sign(venue):
    venue.json("GET", "/api/v3/time", {"serverTime": T0 + 6000})  # server 6 s ahead of us
    clock = ManualClock(T0, auto_advance=True)
    c = client(venue, clock)
    assert await c.sync_clock() == 6000
    with pytest.raises(ClockSkewError, match="behind the server"):
        await c.place_order(order(), BTC)
    assert venue.count("POST", "/api/v3/order") == 0
    venue.json("GET", "/api/v3/time", {"serverTime": T0 - 1500})  # now 1.5 s ahead of the server
    await c.sync_clock()
    with pytest.raises(ClockSkewError, match="ahead of the server"):
        await c.balances()
    await c.close()


async def test_exchange_info_limits_and_filters_are_adopted(venue):
    venue.json("GET", "/api/v3/exchangeInfo", {
        "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                       {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 20},
                       {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000}],
        "symbols": [{"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT", "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"},
            {"filterType": "NOTIONAL", "minNotional": "5", "applyMinToMarket": True}]},
                    {"symbol": "OLDUSDT", "status": "BREAK", "baseAsset": "OLD", "quoteAsset": "USDT", "filters": []}]})
    c = client(venue, ManualClock(T0, auto_advance=True))
    (inst,) = await c.instruments()
    assert (inst.tick_size, inst.step_size, inst.min_notional) == (Decimal("0.01"), Decimal("0.00001"), Decimal(5))
    assert not inst.grid_at_min
    assert c.limiter.weight["1M"].limit == 1200 and c.limiter.orders["10S"].limit == 20
    assert c.limiter.orders["1D"].limit == 160_000  # not republished: the documented default stays
    await c.close()
