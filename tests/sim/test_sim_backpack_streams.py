"""Backpack WebSocket face on the wire: envelopes, depth sequencing, µs times, private streams, WS faults."""

import asyncio
import contextlib
import json

import aiohttp
from sim_backpack_support import KEY, SEED, backpack_sim, signed

from ate.sim.backpack_face import BackpackFace
from ate.venues.backpack.signing import sign


@contextlib.asynccontextmanager
async def ws_world(face, autoping=True, **overrides):
    """A simulated world plus an HTTP session and one WebSocket connection to the Backpack face."""
    async with (backpack_sim(face, **overrides) as sim, aiohttp.ClientSession() as s,
                s.ws_connect(sim.url("backpack", "ws"), autoping=autoping) as ws):
        yield sim, s, ws


async def frames(ws, n, timeout=5.0):
    out = []
    while len(out) < n:
        msg = await asyncio.wait_for(ws.receive(), timeout)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        out.append(json.loads(msg.data))
    return out


async def subscribed(face, *names):
    while not all(face.streams.wants(n) for n in names):
        await asyncio.sleep(0.001)


async def rest(session, sim, method, path, params):
    headers, body = signed(method, path, params, sim.clock.now_ms())
    async with session.request(method, sim.url("backpack") + path, data=body, headers=headers) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_public_streams_envelope_depth_sequence_and_microseconds():
    face = BackpackFace()
    async with ws_world(face) as (sim, s, ws):
        await ws.send_json({"method": "SUBSCRIBE", "params": ["depth.BTC_USDC", "bookTicker.BTC_USDC"]})
        await subscribed(face, "depth.BTC_USDC", "bookTicker.BTC_USDC")
        m = sim.core.markets[("backpack", "BTC_USDC")]
        snapshot_id = m.update_id
        sim.advance(60_000)  # one candle: four book updates
        got = await frames(ws, 8)
        assert {f["stream"] for f in got} == {"depth.BTC_USDC", "bookTicker.BTC_USDC"}
        depth = [f["data"] for f in got if f["stream"] == "depth.BTC_USDC"]
        assert depth[0]["U"] == snapshot_id + 1
        assert all(b["U"] == a["u"] + 1 for a, b in zip(depth, depth[1:], strict=False))
        assert depth[-1]["u"] == m.update_id and all(d["e"] == "depth" and d["s"] == "BTC_USDC" for d in depth)
        # µs; the replay sets the clock to each book update's time, so event and engine time agree
        assert [d["E"] for d in depth] == [d["T"] for d in depth] == sorted(d["T"] for d in depth)
        assert depth[-1]["E"] == sim.clock.now_ms() * 1000
        ticker = [f["data"] for f in got if f["stream"] == "bookTicker.BTC_USDC"][-1]
        assert ticker["u"] == str(m.update_id) and float(ticker["b"]) == float(m.bid_price)


async def test_depth_diffs_rebuild_the_rest_book():
    face = BackpackFace()
    async with ws_world(face) as (sim, s, ws):
        await ws.send_json({"method": "SUBSCRIBE", "params": ["depth.BTC_USDC_PERP"]})
        await subscribed(face, "depth.BTC_USDC_PERP")
        async with s.get(sim.url("backpack") + "/api/v1/depth", params={"symbol": "BTC_USDC_PERP"}) as r:
            snap = await r.json()
        bids = {p: q for p, q in snap["bids"]}
        asks = {p: q for p, q in snap["asks"]}
        last = int(snap["lastUpdateId"])
        sim.advance(5 * 60_000)
        for f in await frames(ws, 20):
            d = f["data"]
            assert d["U"] == last + 1
            last = d["u"]
            for side, levels in ((bids, d["b"]), (asks, d["a"])):
                for p, q in levels:
                    if q == "0":
                        side.pop(p)
                    else:
                        side[p] = q
        async with s.get(sim.url("backpack") + "/api/v1/depth", params={"symbol": "BTC_USDC_PERP"}) as r:
            now = await r.json()
        assert int(now["lastUpdateId"]) == last
        assert sorted(bids.items(), key=lambda x: float(x[0])) == [tuple(x) for x in now["bids"]]
        assert sorted(asks.items(), key=lambda x: float(x[0])) == [tuple(x) for x in now["asks"]]


async def test_kline_trade_and_mark_price_streams():
    face = BackpackFace()
    async with ws_world(face) as (sim, s, ws):
        names = ["kline.1m.BTC_USDC_PERP", "markPrice.BTC_USDC_PERP", "trade.BTC_USDC_PERP"]
        await ws.send_json({"method": "SUBSCRIBE", "params": names})
        await subscribed(face, *names)
        sim.advance(60_000)
        got = await frames(ws, 9)  # 4 marks, 4 trades, 1 closed kline
        kinds = [f["data"]["e"] for f in got]
        assert kinds.count("markPrice") == 4 and kinds.count("trade") == 4 and kinds.count("kline") == 1
        m = sim.core.markets[("backpack", "BTC_USDC_PERP")]
        kline = next(f["data"] for f in got if f["data"]["e"] == "kline")
        c = m.candles[-1]
        assert kline["X"] is True and float(kline["c"]) == c.close and float(kline["h"]) == c.high
        assert kline["t"].startswith("2026-03-") and isinstance(kline["t"], str)
        mark = next(f["data"] for f in got if f["data"]["e"] == "markPrice")
        assert mark["n"] == m.next_funding_ms and mark["E"] > 10**15  # µs
        trade = next(f["data"] for f in got if f["data"]["e"] == "trade")
        assert isinstance(trade["t"], int) and trade["s"] == "BTC_USDC_PERP"


async def test_private_order_and_position_updates():
    face = BackpackFace()
    async with ws_world(face) as (sim, s, ws):
        await rest(s, sim, "POST", "/api/v1/order", {"symbol": "BTC_USDC_PERP", "side": "Bid",
                                                      "orderType": "Market", "quantity": "0.01"})
        ts, window = sim.clock.now_ms(), 5000
        signature = [KEY, sign(SEED, f"instruction=subscribe&timestamp={ts}&window={window}"), str(ts), str(window)]
        await ws.send_json({"method": "SUBSCRIBE", "params": ["account.orderUpdate", "account.positionUpdate"],
                            "signature": signature})
        (snapshot,) = await frames(ws, 1)
        assert snapshot["stream"] == "account.positionUpdate" and "e" not in snapshot["data"]
        assert snapshot["data"]["q"] == "0.01" and snapshot["data"]["s"] == "BTC_USDC_PERP"
        await subscribed(face, "account.orderUpdate")
        await rest(s, sim, "POST", "/api/v1/order", {"symbol": "BTC_USDC_PERP", "side": "Ask",
                                                      "orderType": "Market", "quantity": "0.01", "clientId": 9})
        got = await frames(ws, 3)
        events = [(f["stream"], f["data"]["e"]) for f in got]
        assert events == [("account.orderUpdate", "orderAccepted"), ("account.orderUpdate", "orderFill"),
                          ("account.positionUpdate", "positionClosed")]
        fill = got[1]["data"]
        assert fill["c"] == 9 and fill["S"] == "Ask" and fill["X"] == "Filled" and fill["l"] == "0.01"
        assert fill["m"] is False and fill["N"] == "USDC" and fill["E"] == sim.clock.now_ms() * 1000


async def test_private_subscription_with_bad_signature_is_refused():
    face = BackpackFace()
    async with ws_world(face) as (sim, s, ws):
        ts = sim.clock.now_ms()
        forged = sign(SEED, f"instruction=subscribe&timestamp={ts + 1}&window=5000")
        await ws.send_json({"method": "SUBSCRIBE", "params": ["account.orderUpdate"],
                            "signature": [KEY, forged, str(ts), "5000"]})
        (err,) = await frames(ws, 1)
        assert err["error"]["message"] == "Invalid signature" and not face.streams.wants("account.orderUpdate")


async def test_ws_drop_fault_closes_the_connection():
    face = BackpackFace()
    async with ws_world(face, faults={"ws_drop": 1.0}) as (sim, s, ws):
        await ws.send_json({"method": "SUBSCRIBE", "params": ["bookTicker.BTC_USDC"]})
        await subscribed(face, "bookTicker.BTC_USDC")
        sim.advance(60_000)
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type is aiohttp.WSMsgType.CLOSE and sim.faults.counts["ws_drop"] == 1


async def test_depth_gap_fault_breaks_the_sequence():
    face = BackpackFace()
    async with ws_world(face, faults={"depth_gap": 0.5}, seed=3) as (sim, s, ws):
        await ws.send_json({"method": "SUBSCRIBE", "params": ["depth.BTC_USDC"]})
        await subscribed(face, "depth.BTC_USDC")
        sim.advance(5 * 60_000)
        got = [f["data"] for f in await frames(ws, 20 - sim.faults.counts["depth_gap"])]
        gaps = sum(b["U"] != a["u"] + 1 for a, b in zip(got, got[1:], strict=False))
        assert sim.faults.counts["depth_gap"] > 0 and gaps > 0


async def test_stale_fault_withholds_market_data_but_not_account_events():
    face = BackpackFace()
    async with ws_world(face, faults={"stale": 0.5}, seed=11) as (sim, s, ws):
        ts = sim.clock.now_ms()
        signature = [KEY, sign(SEED, f"instruction=subscribe&timestamp={ts}&window=5000"), str(ts), "5000"]
        await ws.send_json({"method": "SUBSCRIBE", "params": ["bookTicker.BTC_USDC", "account.orderUpdate"],
                            "signature": signature})
        await subscribed(face, "bookTicker.BTC_USDC", "account.orderUpdate")
        sim.advance(5 * 60_000)  # 20 book updates
        await rest(s, sim, "POST", "/api/v1/order", {"symbol": "BTC_USDC", "side": "Bid", "orderType": "Limit",
                                                      "price": "1000", "quantity": "0.001"})
        market = 0
        while True:
            (f,) = await frames(ws, 1)
            if f["stream"] == "account.orderUpdate":
                break
            market += 1
        withheld = sim.faults.counts["stale"]
        assert 0 < withheld < 20 and market == 20 - withheld


async def test_stall_fault_silences_a_connection_that_still_pings():
    face = BackpackFace(ws_ping_interval_s=0.02, ws_pong_timeout_s=5)
    async with ws_world(face, autoping=False, faults={"ws_stall": 1.0}) as (sim, s, ws):
        await ws.send_json({"method": "SUBSCRIBE", "params": ["bookTicker.BTC_USDC"]})
        await subscribed(face, "bookTicker.BTC_USDC")
        sim.advance(60_000)
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type is aiohttp.WSMsgType.PING and sim.faults.counts["ws_stall"] == 1
        assert face.streams.connections == 1
