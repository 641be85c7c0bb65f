"""Binance REST order semantics: response types, real error codes, history endpoints."""

from __future__ import annotations

from decimal import Decimal as D

import aiohttp
from sim_core_support import KEY, SECRET

from ate.venues.binance.signing import sign_params


class Client:
    def __init__(self, session, sim, venue):
        self.s, self.sim, self.base = session, sim, sim.url(venue)

    async def __call__(self, method, path, **params):
        q = sign_params(SECRET, [*[(k, str(v)) for k, v in params.items()],
                                 ("timestamp", str(self.sim.clock.now_ms()))])
        async with self.s.request(method, f"{self.base}{path}?{q}", headers={"X-MBX-APIKEY": KEY}) as r:
            return r.status, await r.json()


async def test_spot_response_types_and_error_codes(binance_sim):
    sim = binance_sim
    m = sim.core.market("binance-spot", "BTCUSDT")
    async with aiohttp.ClientSession() as s:
        call = Client(s, sim, "binance-spot")
        status, ack = await call("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT",
                                 timeInForce="GTC", quantity="0.01", price="100000", newOrderRespType="ACK",
                                 newClientOrderId="x-abc")
        assert status == 200 and set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
        status, full = await call("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET",
                                  quoteOrderQty="1000")
        assert status == 200 and full["status"] == "FILLED" and full["fills"][0]["price"] == f"{m.ask_price:.8f}"
        assert D(full["cummulativeQuoteQty"]) <= 1000 and D(full["executedQty"]) == D("0.00946")
        status, result = await call("POST", "/api/v3/order", symbol="BTCUSDT", side="SELL", type="LIMIT",
                                    timeInForce="IOC", quantity="0.001", price=f"{m.bid_price}",
                                    newOrderRespType="RESULT")
        assert status == 200 and result["status"] == "FILLED" and "fills" not in result
        errors = [
            (dict(side="BUY", type="LIMIT_MAKER", quantity="0.01", price=f"{m.ask_price}"), -2010,
             "Order would immediately match and take."),
            (dict(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="100000",
                  newClientOrderId="x-abc"), -2010, "Duplicate order sent."),
            (dict(side="BUY", type="LIMIT", timeInForce="GTC", quantity="5", price="100000"), -2010,
             "Account has insufficient balance for requested action."),
            (dict(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="100000.001"), -1013,
             "Filter failure: PRICE_FILTER"),
            (dict(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.000001", price="100000"), -1013,
             "Filter failure: LOT_SIZE"),
            (dict(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.00001", price="100000"), -1013,
             "Filter failure: NOTIONAL"),
            (dict(side="BUY", type="LIMIT", quantity="0.01", price="100000"), -1102, "'timeInForce'"),
        ]
        for params, code, msg in errors:
            status, body = await call("POST", "/api/v3/order", symbol="BTCUSDT", **params)
            assert (status, body["code"]) == (400, code) and msg in body["msg"], (params, body)
        status, body = await call("POST", "/api/v3/order", symbol="ETHBTC", side="BUY", type="MARKET", quantity="1")
        assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
        assert (await call("GET", "/api/v3/order", symbol="BTCUSDT", orderId=999))[1]["code"] == -2013
        assert (await call("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=999))[1]["code"] == -2011
        status, got = await call("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="x-abc")
        assert got["orderId"] == ack["orderId"] and got["status"] == "NEW" and got["cummulativeQuoteQty"]
        status, canceled = await call("DELETE", "/api/v3/openOrders", symbol="BTCUSDT")
        assert [c["orderId"] for c in canceled] == [ack["orderId"]] and canceled[0]["status"] == "CANCELED"
        status, orders = await call("GET", "/api/v3/allOrders", symbol="BTCUSDT")
        assert [o["status"] for o in orders] == ["CANCELED", "FILLED", "FILLED"]
        status, trades = await call("GET", "/api/v3/myTrades", symbol="BTCUSDT", orderId=full["orderId"])
        assert [t["isBuyer"] for t in trades] == [True] and trades[0]["commissionAsset"] == "BTC"


async def test_usdm_error_codes_and_leverage(binance_sim):
    sim = binance_sim
    m = sim.core.market("binance-usdm", "BTCUSDT")
    async with aiohttp.ClientSession() as s:
        call = Client(s, sim, "binance-usdm")
        status, body = await call("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="LIMIT",
                                  timeInForce="GTX", quantity="0.01", price=f"{m.ask_price}")
        assert (status, body["code"]) == (400, -5022)
        assert sim.core.all_orders("alice", "binance-usdm") == []  # not recorded
        status, body = await call("POST", "/fapi/v1/order", symbol="BTCUSDT", side="SELL", type="MARKET",
                                  quantity="0.01", reduceOnly="true")
        assert (status, body["code"]) == (400, -2022)
        status, body = await call("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=2)
        assert body == {"leverage": 2, "maxNotionalValue": "1000000", "symbol": "BTCUSDT"}
        status, body = await call("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET",
                                  quantity="1")  # 1 BTC at 2x needs ~52800 USDT > 50000
        assert (status, body["code"], body["msg"]) == (400, -2019, "Margin is insufficient.")
        status, body = await call("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET",
                                  quantity="0.5")
        assert status == 200 and body["status"] == "FILLED" and D(body["avgPrice"]) == m.ask_price
        status, risk = await call("GET", "/fapi/v3/positionRisk", symbol="BTCUSDT")
        assert [(r["positionAmt"], r["leverage"]) for r in risk] == [("0.5", "2")]
        status, account = await call("GET", "/fapi/v2/account")
        assert D(account["totalPositionInitialMargin"]) == D("0.5") * m.mark / 2
