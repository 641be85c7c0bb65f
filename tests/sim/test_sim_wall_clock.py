"""The wall clock mode (``sim.clock: wall``), as ``ate simulate`` runs by default: every time field a face
emits, on REST and streams, is wall time within 1 s at speed 60, a request stamped 60 s in the past is
refused with the venue's own error, and a fill shows up in ``myTrades?startTime=serverTime-10min``."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal as D

import aiohttp
import pytest
from sim_backpack_support import KEY as BP_KEY
from sim_backpack_support import SEED as BP_SEED
from sim_backpack_support import signed
from sim_core_support import KEY, ROOT, SECRET
from sim_wall_support import SPEED, wall_config
from yarl import URL

from ate.sim.runner import run_simulator
from ate.venues.backpack.signing import sign
from ate.venues.binance.signing import sign_params, ws_api_signature

EIGHT_HOURS = 8 * 3_600_000


@pytest.fixture
async def wall_sim():
    async with run_simulator(wall_config(), base_dir=ROOT) as sim, aiohttp.ClientSession() as s:
        yield sim, s


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def assert_now(ts_ms: int, what: str) -> None:
    assert abs(ts_ms - now_ms()) < 1000, f"{what}: {ts_ms} is {ts_ms - now_ms()} ms from the wall clock"


async def binance(s, method, base, path, params, *, ts=None):
    q = sign_params(SECRET, [*params, ("timestamp", str(now_ms() if ts is None else ts))])
    async with s.request(method, URL(f"{base}{path}?{q}", encoded=True), headers={"X-MBX-APIKEY": KEY}) as r:
        return r.status, await r.json()


async def backpack(s, sim, method, path, params, *, ts=None):
    headers, body = signed(method, path, params, now_ms() if ts is None else ts)
    query = "" if method != "GET" or not params else "?" + "&".join(f"{k}={v}" for k, v in params.items())
    async with s.request(method, sim.url("backpack") + path + query, data=body, headers=headers) as r:
        return r.status, await r.json()


async def frames_until(ws, done, timeout=5.0) -> list[dict]:
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while not done(out):
        msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        out.append(json.loads(msg.data))
    return out


async def test_binance_spot_times_are_wall_time_and_a_fill_is_in_my_trades_from_server_time_minus_10_min(wall_sim):
    sim, s = wall_sim
    base = sim.url("binance-spot")
    async with s.get(base + "/api/v3/time") as r:
        server = (await r.json())["serverTime"]
    assert_now(server, "serverTime")
    async with s.ws_connect(sim.url("binance-spot", "ws") + "/ws-api/v3") as ws:
        params = {"apiKey": KEY, "timestamp": now_ms()}
        params["signature"] = ws_api_signature(SECRET, params)
        await ws.send_str(json.dumps({"id": 1, "method": "userDataStream.subscribe.signature", "params": params}))
        assert (await frames_until(ws, lambda f: len(f) == 1))[0]["status"] == 200
        status, order = await binance(s, "POST", base, "/api/v3/order",
                                      [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"),
                                       ("quantity", "0.01"), ("newOrderRespType", "FULL")])
        assert status == 200 and order["status"] == "FILLED", order
        assert_now(order["transactTime"], "transactTime")
        events = [f["event"] for f in await frames_until(
            ws, lambda f: sum(x.get("event", {}).get("e") == "executionReport" for x in f) == 2)]
    for e in events:
        assert_now(e["E"], f"{e['e']} E")
        if e["e"] == "executionReport":
            for key in ("O", "T", "W"):
                assert_now(e[key], f"executionReport {key}")
    status, trades = await binance(s, "GET", base, "/api/v3/myTrades",
                                   [("symbol", "BTCUSDT"), ("startTime", str(server - 600_000))])
    assert status == 200 and [t["orderId"] for t in trades] == [order["orderId"]]
    assert_now(trades[0]["time"], "myTrades time")
    status, resting = await binance(s, "POST", base, "/api/v3/order",
                                    [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTC"),
                                     ("quantity", "0.01"), ("price", "10000")])
    assert status == 200 and resting["status"] == "NEW"
    assert_now(resting["workingTime"], "workingTime")
    status, canceled = await binance(s, "DELETE", base, "/api/v3/order",
                                     [("symbol", "BTCUSDT"), ("orderId", str(resting["orderId"]))])
    assert status == 200 and canceled["status"] == "CANCELED"
    assert_now(canceled["transactTime"], "cancel transactTime")


async def test_binance_usdm_mark_funding_and_order_update_times_are_wall_time(wall_sim):
    sim, s = wall_sim
    rest = sim.url("binance-usdm")
    async with s.get(rest + "/fapi/v1/premiumIndex?symbol=BTCUSDT") as r:
        premium = await r.json()
    assert_now(premium["time"], "premiumIndex time")
    # a funding period lasts 8 h / speed on the wall clock
    assert 0 < premium["nextFundingTime"] - now_ms() <= EIGHT_HOURS // SPEED + 1000
    async with s.get(rest + "/fapi/v1/fundingRate?symbol=BTCUSDT&limit=2") as r:
        history = await r.json()
    assert [h["fundingTime"] for h in history][1] - history[0]["fundingTime"] == EIGHT_HOURS // SPEED
    assert premium["nextFundingTime"] - history[-1]["fundingTime"] == EIGHT_HOURS // SPEED
    async with s.post(rest + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": KEY}) as r:
        key = (await r.json())["listenKey"]
    async with s.ws_connect(f"{sim.url('binance-usdm', 'ws')}/private/ws?listenKey={key}") as ws:
        status, order = await binance(s, "POST", rest, "/fapi/v1/order",
                                      [("symbol", "BTCUSDT"), ("side", "SELL"), ("type", "MARKET"), ("quantity", "0.01")])
        assert status == 200, order
        assert_now(order["updateTime"], "order updateTime")
        events = await frames_until(ws, lambda f: sum(x.get("e") == "ORDER_TRADE_UPDATE" for x in f) == 2)
    for e in events:
        assert_now(e["E"], f"{e['e']} E")
        assert_now(e["T"], f"{e['e']} T")
        if e["e"] == "ORDER_TRADE_UPDATE":
            assert_now(e["o"]["T"], "ORDER_TRADE_UPDATE o.T")
    async with s.ws_connect(sim.url("binance-usdm", "ws") + "/public/ws/btcusdt@depth@100ms") as ws:
        depth = (await frames_until(ws, lambda f: any(x.get("e") == "depthUpdate" for x in f)))[-1]
    assert_now(depth["E"], "depthUpdate E")
    # the snapshot sent on connect: T is when the book last changed (a replayed 1h candle moves it
    # every quarter hour of data, 15 s of wall time at speed 60)
    assert depth["E"] - 15_000 - 1000 <= depth["T"] <= depth["E"]


async def test_backpack_times_are_wall_time(wall_sim):
    sim, s = wall_sim
    async with s.get(sim.url("backpack") + "/api/v1/time") as r:
        assert_now(int(await r.text()), "/api/v1/time")
    async with s.ws_connect(sim.url("backpack", "ws")) as ws:
        ts = now_ms()
        signature = [BP_KEY, sign(BP_SEED, f"instruction=subscribe&timestamp={ts}&window=5000"), str(ts), "5000"]
        await ws.send_json({"method": "SUBSCRIBE", "params": ["account.orderUpdate"], "signature": signature})
        await asyncio.sleep(0.2)  # the subscription has no acknowledgement on Backpack
        status, order = await backpack(s, sim, "POST", "/api/v1/order",
                                       {"symbol": "BTC_USDC", "side": "Bid", "orderType": "Market", "quantity": "0.01"})
        assert status == 200 and order["status"] == "Filled", order
        assert_now(order["createdAt"], "order createdAt")
        fill = next(f for f in await frames_until(ws, lambda f: any(x["data"]["e"] == "orderFill" for x in f))
                    if f["data"]["e"] == "orderFill")["data"]
    assert_now(fill["E"] // 1000, "orderFill E (µs)")
    assert_now(fill["T"] // 1000, "orderFill T (µs)")
    async with s.get(sim.url("backpack") + "/api/v1/markPrices?symbol=BTC_USDC_PERP") as r:
        (mark,) = await r.json()
    assert 0 < mark["nextFundingTimestamp"] - now_ms() <= EIGHT_HOURS // SPEED + 1000


async def test_a_request_stamped_60_s_in_the_past_is_refused_on_both_faces(wall_sim):
    sim, s = wall_sim
    old = now_ms() - 60_000
    status, body = await binance(s, "GET", sim.url("binance-spot"), "/api/v3/account", [], ts=old)
    assert (status, body["code"]) == (400, -1021)
    assert body["msg"] == "Timestamp for this request is outside of the recvWindow."
    status, body = await binance(s, "GET", sim.url("binance-usdm"), "/fapi/v2/account", [], ts=old)
    assert (status, body["code"]) == (400, -1021)
    status, body = await backpack(s, sim, "GET", "/api/v1/capital", {}, ts=old)
    assert status == 400 and body == {"code": "INVALID_CLIENT_REQUEST", "message": "Request has expired"}
    status, body = await backpack(s, sim, "GET", "/api/v1/capital", {})
    assert status == 200 and D(body["USDC"]["available"]) == D(100000)


async def test_klines_in_wall_mode_are_buckets_of_wall_time(wall_sim):
    """At speed 60 a 1m candle of the data is one second on the wire: 1s rows are single candles; 1m and
    1h rows are buckets of wall time (the warm-up history: an hour of it per wall minute)."""
    sim, s = wall_sim
    await asyncio.sleep(1.5)  # a few replayed minutes close
    rows = {}
    for interval in ("1s", "1m", "1h"):
        async with s.get(sim.url("binance-spot") + "/api/v3/klines",
                         params={"symbol": "BTCUSDT", "interval": interval, "limit": "3"}) as r:
            rows[interval] = await r.json()
    span = {"1s": 1000, "1m": 60_000, "1h": 3_600_000}
    for interval, got in rows.items():
        assert got, interval
        assert all(k[0] % span[interval] == 0 and k[6] == k[0] + span[interval] - 1 for k in got), got
        assert got[-1][6] < now_ms()  # closed rows only
    assert rows["1s"][-1][8] == 4  # one replayed candle: its path's four trades
