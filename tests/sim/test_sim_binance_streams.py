"""Binance face streams: klines, bookTicker, depth ids, USD-M routing, control frames, user data."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal as D

import aiohttp
import pytest
from sim_core_support import KEY, SECRET, START_MS

from ate.model import OrderType, Side
from ate.venues.binance.signing import sign_params, ws_api_signature


async def _drain(ws, timeout=0.3) -> list:
    out = []
    while True:
        try:
            msg = await ws.receive(timeout=timeout)
        except TimeoutError:
            return out
        if msg.type != aiohttp.WSMsgType.TEXT:
            return out
        out.append(json.loads(msg.data))


async def test_kline_closes_exactly_once_per_candle_on_the_replay_clock(binance_sim):
    sim = binance_sim
    async with aiohttp.ClientSession() as s, s.ws_connect(sim.url("binance-spot", "ws") + "/ws/btcusdt@kline_1m") as ws:
        await asyncio.sleep(0.05)
        for _ in range(3 * 4):
            sim.advance(15_000)
            await asyncio.sleep(0.01)
        msgs = await _drain(ws)
    closes = [m["k"] for m in msgs if m["k"]["x"]]
    progress = [m["k"] for m in msgs if not m["k"]["x"]]
    # one update per replayed path point after subscribing (the open of the first candle came before)
    assert len(progress) == 3 * 4 and [k["t"] for k in progress[:4]] == [START_MS] * 3 + [START_MS + 60_000]
    assert [k["t"] for k in closes] == [START_MS, START_MS + 60_000, START_MS + 120_000]
    assert all(k["x"] is True and k["i"] == "1m" and k["T"] == k["t"] + 59_999 for k in closes)
    candle = sim.core.market("binance-spot", "BTCUSDT").candles
    first = next(c for c in candle if c.open_ms == START_MS)
    assert D(closes[0]["c"]) == D(repr(first.close)) and D(closes[0]["v"]) == D(repr(first.volume))
    # the last update before the close has walked the path: the candle's real open, high and low
    last = progress[2]
    assert (D(last["o"]), D(last["h"]), D(last["l"])) == (D(repr(first.open)), D(repr(first.high)),
                                                          D(repr(first.low)))


async def test_spot_book_ticker_has_no_event_fields_and_depth_ids_follow_rest(binance_sim):
    sim = binance_sim
    m = sim.core.market("binance-spot", "BTCUSDT")
    url = sim.url("binance-spot", "ws") + "/stream?streams=btcusdt@bookTicker/btcusdt@depth@100ms"
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        async with s.get(sim.url("binance-spot") + "/api/v3/depth?symbol=BTCUSDT&limit=20") as r:
            snapshot = await r.json()
        await asyncio.sleep(0.05)
        for _ in range(3):
            sim.advance(15_000)
            await asyncio.sleep(0.01)
        msgs = await _drain(ws)
    books = [x["data"] for x in msgs if x["stream"] == "btcusdt@bookTicker"]
    depth = [x["data"] for x in msgs if x["stream"] == "btcusdt@depth@100ms"]
    assert len(books) == 3 and set(books[0]) == {"u", "s", "b", "B", "a", "A"}
    assert books[-1]["b"] == f"{m.bid_price:.8f}" and books[-1]["u"] == m.update_id
    assert [d["U"] for d in depth] == [snapshot["lastUpdateId"] + i for i in (1, 2, 3)]
    assert all(d["U"] == d["u"] and d["e"] == "depthUpdate" for d in depth)
    # applying the diffs to the snapshot gives the book the REST endpoint shows now
    book = {float(p): q for p, q in snapshot["bids"]}
    for d in depth:
        for p, q in d["b"]:
            if D(q) == 0:
                book.pop(float(p), None)
            else:
                book[float(p)] = q
    assert max(book) == float(m.bid_price)


async def test_usdm_routing_withholds_market_streams_on_the_public_path(binance_sim):
    sim = binance_sim
    ws_base = sim.url("binance-usdm", "ws")
    async with aiohttp.ClientSession() as s, \
            s.ws_connect(ws_base + "/public/ws/btcusdt@markPrice") as wrong, \
            s.ws_connect(ws_base + "/market/ws/btcusdt@markPrice") as right, \
            s.ws_connect(ws_base + "/ws/btcusdt@bookTicker") as legacy:
        await asyncio.sleep(0.05)
        for _ in range(2):
            sim.advance(15_000)
            await asyncio.sleep(0.01)
        on_wrong, on_right, on_legacy = await _drain(wrong), await _drain(right), await _drain(legacy)
    m = sim.core.market("binance-usdm", "BTCUSDT")
    assert on_wrong == []
    # the state at connect, then each replayed mark (and a push every 3 s of world time at least)
    assert len(on_right) >= 3 and on_right[-1]["e"] == "markPriceUpdate"
    assert D(on_right[-1]["p"]) == m.mark.quantize(m.tick) and on_right[-1]["T"] == m.next_funding_ms
    assert set(on_right[0]) >= {"e", "E", "s", "p", "i", "P", "r", "T"}
    assert len(on_legacy) == 3 and on_legacy[0]["e"] == "bookTicker" and "T" in on_legacy[0]


async def test_subscribe_unsubscribe_list_and_errors(binance_sim):
    async with aiohttp.ClientSession() as s, s.ws_connect(binance_sim.url("binance-spot", "ws") + "/ws") as ws:
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@aggTrade"],
                                      "id": 1}))
        assert json.loads((await ws.receive()).data) == {"result": None, "id": 1}
        await ws.send_str(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": "x"}))
        assert json.loads((await ws.receive()).data) == {"result": None, "id": "x"}
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        assert json.loads((await ws.receive()).data) == {"result": ["btcusdt@aggTrade"], "id": 3}
        await ws.send_str("{not json")
        assert json.loads((await ws.receive()).data)["code"] == 3
        binance_sim.advance(15_000)
        trade = json.loads((await ws.receive(timeout=2)).data)
        assert trade["e"] == "aggTrade" and trade["s"] == "BTCUSDT" and "M" in trade


async def test_spot_user_data_via_ws_api_signature_subscription(binance_sim):
    sim = binance_sim
    async with aiohttp.ClientSession() as s, s.ws_connect(sim.url("binance-spot", "ws") + "/ws-api/v3") as ws:
        params = {"apiKey": KEY, "timestamp": sim.clock.now_ms()}
        params["signature"] = ws_api_signature(SECRET, params)
        await ws.send_str(json.dumps({"id": 7, "method": "userDataStream.subscribe.signature", "params": params}))
        reply = json.loads((await ws.receive(timeout=2)).data)
        assert reply["id"] == 7 and reply["status"] == 200 and reply["result"] == {"subscriptionId": 0}
        assert reply["rateLimits"][0]["count"] == 2
        bad = dict(params, signature="0" * 64)
        await ws.send_str(json.dumps({"id": 8, "method": "userDataStream.subscribe.signature", "params": bad}))
        assert json.loads((await ws.receive(timeout=2)).data)["error"]["code"] == -1022
        m = sim.core.market("binance-spot", "BTCUSDT")
        sim.core.place_order("alice", "binance-spot", "BTCUSDT", Side.BUY, OrderType.MARKET, D("0.01"))
        events = [e for e in await _drain(ws) if "subscriptionId" in e]
    kinds = [e["event"]["e"] for e in events]
    assert kinds.count("executionReport") == 2 and "outboundAccountPosition" in kinds
    trade = next(e["event"] for e in events if e["event"].get("x") == "TRADE")
    assert trade["X"] == "FILLED" and D(trade["L"]) == m.ask_price and trade["l"] == "0.01000000"
    pos = next(e["event"] for e in events if e["event"]["e"] == "outboundAccountPosition")
    usdt = next(b for b in pos["B"] if b["a"] == "USDT")
    assert D(usdt["f"]) == sim.core.balances("alice", "binance-spot")["USDT"].free


async def test_usdm_listen_key_order_and_funding_fee_events(binance_sim):
    sim = binance_sim
    rest = sim.url("binance-usdm")
    async with aiohttp.ClientSession() as s:
        async with s.post(rest + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": KEY}) as r:
            key = (await r.json())["listenKey"]
        async with s.post(rest + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": KEY}) as r:
            assert (await r.json())["listenKey"] == key  # same key while active
        async with s.ws_connect(f"{sim.url('binance-usdm', 'ws')}/private/ws?listenKey={key}") as ws:
            q = sign_params(SECRET, [("symbol", "BTCUSDT"), ("side", "SELL"), ("type", "MARKET"),
                                     ("quantity", "0.5"), ("timestamp", str(sim.clock.now_ms()))])
            async with s.post(rest + "/fapi/v1/order?" + q, headers={"X-MBX-APIKEY": KEY}) as r:
                assert r.status == 200 and r.headers["X-MBX-ORDER-COUNT-1M"] == "1"
            m = sim.core.market("binance-usdm", "BTCUSDT")
            next_funding = m.next_funding_ms
            while sim.clock.now_ms() < next_funding:  # keep the key alive every 30 replayed minutes
                sim.advance_to(min(next_funding, sim.clock.now_ms() + 30 * 60_000))
                async with s.put(rest + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": KEY}) as r:
                    assert r.status == 200
            events = await _drain(ws)
            q = sign_params(SECRET, [("incomeType", "FUNDING_FEE"), ("timestamp", str(sim.clock.now_ms()))])
            async with s.get(rest + "/fapi/v1/income?" + q, headers={"X-MBX-APIKEY": KEY}) as r:
                income = await r.json()
    updates = [e for e in events if e["e"] == "ORDER_TRADE_UPDATE"]
    assert [u["o"]["x"] for u in updates] == ["NEW", "TRADE"] and updates[1]["o"]["X"] == "FILLED"
    accounts = [e["a"] for e in events if e["e"] == "ACCOUNT_UPDATE"]
    assert accounts[0]["m"] == "ORDER" and D(accounts[0]["P"][0]["pa"]) == D("-0.5")
    funding = [a for a in accounts if a["m"] == "FUNDING_FEE"]
    paid = sim.core.funding_for("alice", "binance-usdm", "BTCUSDT")
    assert len(funding) == 1 and len(paid) == 1 and paid[0].ts_ms == next_funding
    assert paid[0].amount == D("0.5") * paid[0].mark * paid[0].rate  # short receives mark × rate
    assert D(funding[0]["B"][0]["wb"]) == sim.core.balances("alice", "binance-usdm")["USDT"].total
    assert [(D(i["income"]), i["time"]) for i in income] == [(paid[0].amount, next_funding)]


async def test_listen_key_expires_after_60_minutes_without_keepalive(binance_sim):
    sim = binance_sim
    rest = sim.url("binance-usdm")
    async with aiohttp.ClientSession() as s:
        async with s.post(rest + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": KEY}) as r:
            key = (await r.json())["listenKey"]
        async with s.ws_connect(f"{sim.url('binance-usdm', 'ws')}/private/ws?listenKey={key}") as ws:
            sim.clock.set(sim.clock.now_ms() + 30 * 60_000)
            async with s.put(rest + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": KEY}) as r:
                assert r.status == 200  # keep-alive: another 60 minutes from now
            sim.advance(59 * 60_000)  # replayed data moves the clock and runs the expiry check
            with pytest.raises(asyncio.TimeoutError):
                await ws.receive(timeout=0.2)
            sim.advance(2 * 60_000)
            msg = await ws.receive(timeout=3)
            expired = json.loads(msg.data)
            assert expired["e"] == "listenKeyExpired" and expired["listenKey"] == key
    # a dead key no longer opens a private stream
    async with aiohttp.ClientSession() as s, s.get(f"{sim.url('binance-usdm')}/private/ws?listenKey={key}") as r:
        assert r.status == 400 and (await r.json())["code"] == -1125


async def test_more_than_five_incoming_messages_a_second_closes_a_spot_connection(binance_sim):
    async with aiohttp.ClientSession() as s, s.ws_connect(binance_sim.url("binance-spot", "ws") + "/ws") as ws:
        for i in range(6):
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        replies = []
        while True:
            msg = await ws.receive(timeout=2)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            replies.append(json.loads(msg.data)["id"])
        assert replies == [0, 1, 2, 3, 4] and ws.closed
