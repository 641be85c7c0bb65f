"""Account events on every balance change (an order locking funds when it rests, releasing them when it
is canceled: real Binance sends ``outboundAccountPosition`` for both) and JSON errors on every path."""

from __future__ import annotations

import json
import time
from decimal import Decimal as D

import aiohttp
from sim_core_support import KEY, SECRET

from ate.venues.binance.signing import sign_params, ws_api_signature


async def events_until(ws, done, timeout=3.0) -> list[dict]:
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while not done(out):
        msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        out.append(json.loads(msg.data).get("event", {}))
    return out


def positions(events: list[dict], asset: str) -> list[tuple[D, D]]:
    return [(D(b["f"]), D(b["l"])) for e in events if e.get("e") == "outboundAccountPosition"
            for b in e["B"] if b["a"] == asset]


async def test_resting_and_canceling_an_order_each_send_the_locked_balance(binance_sim):
    sim = binance_sim
    rest = sim.url("binance-spot")
    async with aiohttp.ClientSession() as s, s.ws_connect(sim.url("binance-spot", "ws") + "/ws-api/v3") as ws:
        params = {"apiKey": KEY, "timestamp": sim.clock.now_ms()}
        params["signature"] = ws_api_signature(SECRET, params)
        await ws.send_str(json.dumps({"id": 1, "method": "userDataStream.subscribe.signature", "params": params}))
        await ws.receive(timeout=2)
        q = sign_params(SECRET, [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTC"),
                                 ("quantity", "0.01"), ("price", "50000"), ("timestamp", str(sim.clock.now_ms()))])
        async with s.post(f"{rest}/api/v3/order?{q}", headers={"X-MBX-APIKEY": KEY}) as r:
            order = await r.json()
            assert r.status == 200 and order["status"] == "NEW", order
        rested = await events_until(ws, lambda ev: any(e.get("e") == "outboundAccountPosition" for e in ev))
        q = sign_params(SECRET, [("symbol", "BTCUSDT"), ("orderId", str(order["orderId"])),
                                 ("timestamp", str(sim.clock.now_ms()))])
        async with s.delete(f"{rest}/api/v3/order?{q}", headers={"X-MBX-APIKEY": KEY}) as r:
            assert r.status == 200
        canceled = await events_until(ws, lambda ev: any(e.get("e") == "outboundAccountPosition" for e in ev))
    assert [e["e"] for e in rested] == ["executionReport", "outboundAccountPosition"]
    assert positions(rested, "USDT") == [(D(100000) - D(500), D(500))]  # 0.01 × 50000 locked
    assert [e["e"] for e in canceled] == ["executionReport", "outboundAccountPosition"]
    assert canceled[0]["X"] == "CANCELED" and positions(canceled, "USDT") == [(D(100000), D(0))]


async def test_unknown_paths_answer_json_errors_on_every_face():
    from sim_backpack_support import backpack_sim

    async with backpack_sim() as bp, aiohttp.ClientSession() as s:
        async with s.get(bp.url("backpack") + "/api/v1/nothing-here") as r:
            assert r.status == 404 and await r.json() == {"code": "RESOURCE_NOT_FOUND", "message": "Not found"}
        async with s.get(bp.url("deribit", "rest") + "/api/v2/public/nothing_here") as r:
            body = await r.json()
            assert r.status == 400 and body["error"]["code"] == -32601


async def test_binance_unknown_paths_and_methods_answer_code_and_msg(binance_sim):
    async with aiohttp.ClientSession() as s:
        for venue, method, path in (("binance-spot", "POST", "/api/v3/userDataStream"),
                                    ("binance-spot", "GET", "/api/v3/nothing"),
                                    ("binance-usdm", "PATCH", "/fapi/v1/order"),
                                    ("binance-usdm", "GET", "/fapi/v9/nothing")):
            async with s.request(method, binance_sim.url(venue) + path) as r:
                body = await r.json()
                assert r.status in (404, 405) and r.content_type == "application/json"
                assert body["code"] == -1000 and path in body["msg"]
