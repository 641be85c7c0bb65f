"""The fault catalogue on the Backpack face, over the real wire (docs/simulator-faults.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from decimal import Decimal as D

import aiohttp
import pytest
from sim_backpack_support import KEY, SEED, backpack_sim, signed

from ate.sim.backpack_face import BackpackFace
from ate.venues.backpack.signing import sign

BP, PERP, SPOT = "backpack", "BTC_USDC_PERP", "BTC_USDC"


@contextlib.asynccontextmanager
async def world(*streams: str, faults: str | None = None):
    """A Backpack world, an HTTP session and one WS subscribed to ``streams`` (signed if private)."""
    face = BackpackFace()
    async with (backpack_sim(face, **({"faults": faults} if faults else {})) as sim, aiohttp.ClientSession() as s,
                s.ws_connect(sim.url(BP, "ws")) as ws):
        if streams:
            frame: dict = {"method": "SUBSCRIBE", "params": list(streams)}
            if any(n.startswith("account.") for n in streams):
                ts = sim.clock.now_ms()
                frame["signature"] = [KEY, sign(SEED, f"instruction=subscribe&timestamp={ts}&window=5000"), str(ts),
                                      "5000"]
            await ws.send_json(frame)
            while not all(face.streams.wants(n) for n in streams):
                await asyncio.sleep(0.001)
        yield sim, s, ws


async def call(s, sim, method, path, params=None):
    headers, body = signed(method, path, params or {}, sim.clock.now_ms())
    url = sim.url(BP) + path
    if method == "GET" and params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    async with s.request(method, url, data=body, headers=headers) as r:
        return r.status, r.headers, json.loads(await r.text() or "null")


async def texts(ws, timeout=0.3) -> list[str]:
    out = []
    while True:
        try:
            msg = await ws.receive(timeout=timeout)
        except TimeoutError:
            return out
        if msg.type != aiohttp.WSMsgType.TEXT:
            return out
        out.append(msg.data)


async def test_crossed_book_on_book_ticker_and_ascending_depth():
    async with world(f"bookTicker.{SPOT}", f"depth.{SPOT}") as (sim, s, ws):
        m = sim.core.market(BP, SPOT)
        sim.inject("crossed_book", venue=BP, symbol=SPOT)
        sim.advance(15_000)
        got = [json.loads(t) for t in await texts(ws)]
    ticker = next(g["data"] for g in got if g["stream"].startswith("bookTicker"))
    depth = next(g["data"] for g in got if g["stream"].startswith("depth"))
    assert (D(ticker["b"]), D(ticker["a"])) == (m.ask_price, m.bid_price) and D(ticker["b"]) > D(ticker["a"])
    bids = [D(p) for p, q in depth["b"] if D(q) > 0]
    asks = [D(p) for p, q in depth["a"] if D(q) > 0]
    assert max(bids) > min(asks)  # a client's local book is crossed


async def test_ws_duplicate_on_backpack():
    async with world(f"bookTicker.{SPOT}") as (sim, s, ws):
        sim.inject("ws_duplicate", venue=BP)
        sim.advance(15_000)
        got = await texts(ws)
    assert len(got) == 2 and got[0] == got[1]


async def test_429_without_retry_after_and_maintenance_503():
    async with world() as (sim, s, ws):
        sim.inject("http_429", venue=BP)
        status, headers, body = await call(s, sim, "GET", "/api/v1/capital")
        assert (status, body["code"]) == (429, "TOO_MANY_REQUESTS") and "Retry-After" not in headers
        sim.inject("maintenance", venue=BP, duration_ms=30_000)
        status, _, body = await call(s, sim, "GET", "/api/v1/capital")
        assert (status, body["code"]) == (503, "MAINTENANCE")
        sim.advance(31_000)
        status, _, _ = await call(s, sim, "GET", "/api/v1/capital")
        assert status == 200


async def test_liquidation_is_an_autoclose_fill_and_closes_the_position():
    async with world("account.orderUpdate", "account.positionUpdate") as (sim, s, ws):
        status, _, _ = await call(s, sim, "POST", "/api/v1/order", {"symbol": PERP, "side": "Ask",
                                                                   "orderType": "Market", "quantity": "0.02"})
        assert status == 200
        await texts(ws)
        sim.inject("liquidate", account="alice", venue=BP, symbol=PERP)
        got = [json.loads(t) for t in await texts(ws)]
    orders = [g["data"] for g in got if g["stream"] == "account.orderUpdate"]
    assert [o["e"] for o in orders] == ["orderAccepted", "orderFill"]
    assert all(o["O"] == "LIQUIDATION_AUTOCLOSE" and o["S"] == "Bid" for o in orders)
    assert orders[1]["l"] == "0.02" and orders[1]["X"] == "Filled"
    closed = next(g["data"] for g in got if g["stream"] == "account.positionUpdate")
    assert closed["e"] == "positionClosed" and D(closed["q"]) == 0


async def test_halt_shows_cancel_only_and_rejects_new_orders():
    async with world() as (sim, s, ws):
        sim.inject("halt", venue=BP, symbol=SPOT)
        async with s.get(sim.url(BP) + f"/api/v1/market?symbol={SPOT}") as r:
            market = await r.json()
        status, _, body = await call(s, sim, "POST", "/api/v1/order", {"symbol": SPOT, "side": "Bid",
                                                                      "orderType": "Market", "quantity": "0.01"})
        assert market["orderBookState"] == "CancelOnly"
        assert (status, body["code"]) == (400, "TRADING_PAUSED")
        sim.inject("resume", venue=BP, symbol=SPOT)
        status, _, _ = await call(s, sim, "POST", "/api/v1/order", {"symbol": SPOT, "side": "Bid",
                                                                   "orderType": "Market", "quantity": "0.01"})
        assert status == 200


async def test_deposit_shows_in_capital():
    async with world() as (sim, s, ws):
        sim.inject("deposit", account="alice", venue=BP, asset="USDC", amount="2500")
        _, _, capital = await call(s, sim, "GET", "/api/v1/capital")
    assert D(capital["USDC"]["available"]) == D("102500")


@pytest.mark.parametrize("order", ["rest_first", "stream_first"])
async def test_ioc_ordering_and_partial_fill_on_backpack(order):
    async with world("account.orderUpdate", faults="ioc_gap_ms=150") as (sim, s, ws):
        sim.inject("ioc_ordering", order=order, venue=BP)
        sim.inject("partial_fill", venue=BP, symbol=SPOT, fraction=0.5)
        seen: list[str] = []

        async def read_stream():
            msg = await ws.receive(timeout=5)
            seen.append(json.loads(msg.data)["data"]["e"])

        async def place():
            status, _, body = await call(s, sim, "POST", "/api/v1/order", {
                "symbol": SPOT, "side": "Bid", "orderType": "Market", "quantity": "0.02"})
            assert status == 200 and body["status"] == "Expired" and D(body["executedQuantity"]) == D("0.01")
            seen.append("rest")

        await asyncio.gather(read_stream(), place())
    assert seen == (["rest", "orderAccepted"] if order == "rest_first" else ["orderAccepted", "rest"])
