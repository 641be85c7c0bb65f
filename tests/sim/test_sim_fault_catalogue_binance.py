"""The fault catalogue on the Binance faces, over the real wire: one test per kind, each injected with
``sim.inject`` and seen as a client sees it (docs/simulator-faults.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from decimal import Decimal as D

import aiohttp
import pytest
from sim_core_support import KEY, ROOT, SECRET
from sim_faults_support import small_config

from ate.model import OrderType, Side
from ate.sim.binance import BinanceFace
from ate.sim.clock import SteppingClock
from ate.sim.core import OrderRejected, RejectReason
from ate.sim.runner import run_simulator
from ate.venues.binance.signing import sign_params, ws_api_signature

SPOT, USDM = "binance-spot", "binance-usdm"


@contextlib.asynccontextmanager
async def world(faults: str | None = None):
    async with run_simulator(small_config(**({"faults": faults} if faults else {})), clock=SteppingClock(),
                             faces=[BinanceFace()], base_dir=ROOT) as sim, aiohttp.ClientSession() as s:
        yield sim, s


async def call(s, sim, venue, method, path, **params):
    """A signed REST call; (status, headers, parsed body)."""
    q = sign_params(SECRET, [*[(k, str(v)) for k, v in params.items()], ("timestamp", str(sim.clock.now_ms()))])
    async with s.request(method, f"{sim.url(venue)}{path}?{q}", headers={"X-MBX-APIKEY": KEY}) as r:
        return r.status, r.headers, await r.json()


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


async def book_frames(sim, s, updates: int, stream: str = "/ws/btcusdt@bookTicker") -> list[str]:
    async with s.ws_connect(sim.url(SPOT, "ws") + stream) as ws:
        await asyncio.sleep(0.05)
        for _ in range(updates):
            sim.advance(15_000)
            await asyncio.sleep(0.01)
        return await texts(ws)


@contextlib.asynccontextmanager
async def spot_user_stream(sim, s):
    async with s.ws_connect(sim.url(SPOT, "ws") + "/ws-api/v3") as ws:
        params = {"apiKey": KEY, "timestamp": sim.clock.now_ms()}
        params["signature"] = ws_api_signature(SECRET, params)
        await ws.send_str(json.dumps({"id": 1, "method": "userDataStream.subscribe.signature", "params": params}))
        assert json.loads((await ws.receive(timeout=2)).data)["status"] == 200
        yield ws


@contextlib.asynccontextmanager
async def usdm_user_stream(sim, s):
    async with s.post(sim.url(USDM) + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": KEY}) as r:
        key = (await r.json())["listenKey"]
    async with s.ws_connect(f"{sim.url(USDM, 'ws')}/private/ws?listenKey={key}") as ws:
        yield ws


def events(frames: list[str]) -> list[dict]:
    out = [json.loads(f) for f in frames]
    return [f.get("event", f) for f in out if "result" not in f]


# ---------------------------------------------------------------------------------------- market data
@pytest.mark.parametrize(("kind", "check"), [
    ("crossed_book", lambda b, a, rb, ra: (D(b), D(a)) == (ra, rb) and D(b) > D(a)),
    ("locked_book", lambda b, a, rb, ra: D(b) == D(a) == ra),
    ("zero_price", lambda b, a, rb, ra: D(b) == D(a) == 0),
    ("negative_price", lambda b, a, rb, ra: (D(b), D(a)) == (-rb, -ra)),
    ("nan_price", lambda b, a, rb, ra: b == a == "NaN"),
])
async def test_poisoned_book_kinds_reach_book_ticker_and_depth_once(kind, check):
    async with world() as (sim, s):
        m = sim.core.market(SPOT, "BTCUSDT")
        async with s.ws_connect(sim.url(SPOT, "ws") + "/stream?streams=btcusdt@bookTicker/btcusdt@depth@100ms") as ws:
            await asyncio.sleep(0.05)
            sim.inject(kind, venue=SPOT, symbol="BTCUSDT")
            sim.advance(15_000)
            real = (m.bid_price, m.ask_price)
            await asyncio.sleep(0.01)
            sim.advance(15_000)
            got = [json.loads(t) for t in await texts(ws)]
    tickers = [g["data"] for g in got if g["stream"] == "btcusdt@bookTicker"]
    depth = [g["data"] for g in got if g["stream"] == "btcusdt@depth@100ms"]
    assert len(tickers) == len(depth) == 2
    assert check(tickers[0]["b"], tickers[0]["a"], *real)
    assert check(depth[0]["b"][0][0], depth[0]["a"][0][0], *real)
    # one occasion only: the next update is clean again
    assert D(tickers[1]["b"]) == m.bid_price < D(tickers[1]["a"]) == m.ask_price
    assert sim.faults.counts[kind] == 1


@pytest.mark.parametrize(("kind", "factor"), [("spike", 3), ("drop", 0.5)])
async def test_spike_and_drop_move_the_market_and_fill_resting_orders(kind, factor):
    async with world() as (sim, s):
        m = sim.core.market(SPOT, "BTCUSDT")
        mid = (m.bid_price + m.ask_price) / 2
        far = (mid * D(2)).quantize(D("0.01")) if kind == "spike" else (mid * D("0.6")).quantize(D("0.01"))
        side = Side.SELL if kind == "spike" else Side.BUY
        resting, _ = sim.core.place_order("alice", SPOT, "BTCUSDT", side, OrderType.LIMIT, D("0.01"), far)
        async with s.ws_connect(sim.url(SPOT, "ws") + "/ws/btcusdt@bookTicker") as ws:
            await asyncio.sleep(0.05)
            sim.inject(kind, venue=SPOT, symbol="BTCUSDT", factor=factor, ticks=2)
            for _ in range(3):
                sim.advance(15_000)
                await asyncio.sleep(0.01)
            bids = [D(json.loads(t)["b"]) for t in await texts(ws)]
    assert len(bids) == 3
    assert all(abs(b / mid - D(factor)) < D("0.05") for b in bids[:2])  # two shocked updates
    assert abs(bids[2] / mid - 1) < D("0.05")  # then the recorded path again
    assert resting.filled_qty == D("0.01") and resting.avg_price == far  # filled as maker at its limit


# ---------------------------------------------------------------------------------------- streams
async def test_ws_duplicate_sends_a_message_twice():
    async with world() as (sim, s):
        sim.inject("ws_duplicate", venue=SPOT)
        got = [json.loads(t)["u"] for t in await book_frames(sim, s, 2)]
    assert got[0] == got[1] and got[2] == got[0] + 1 and len(got) == 3


async def test_ws_reorder_sends_a_message_after_the_next_one():
    async with world() as (sim, s):
        sim.inject("ws_reorder", venue=SPOT)
        got = [json.loads(t)["u"] for t in await book_frames(sim, s, 3)]
    first = got[1]
    assert got == [first + 1, first, first + 2]


async def test_ws_malformed_sends_a_text_frame_that_is_not_json():
    async with world() as (sim, s):
        sim.inject("ws_malformed", venue=SPOT, count=2)
        frames = await book_frames(sim, s, 3)
    assert len(frames) == 3
    for bad in frames[:2]:
        with pytest.raises(ValueError):
            json.loads(bad)
    assert "u" in json.loads(frames[2])


async def test_armed_ws_drop_and_stall_pick_their_venue():
    async with world() as (sim, s):
        sim.inject("ws_drop", venue=USDM)  # another venue: the spot stream is untouched
        assert len(await book_frames(sim, s, 2)) == 2
        sim.inject("ws_stall", venue=SPOT)
        assert await book_frames(sim, s, 2) == []
        assert sim.faults.counts["ws_stall"] == 1 and sim.faults.counts["ws_drop"] == 0


async def test_stale_and_depth_gap_withhold_one_message_each():
    async with world() as (sim, s):
        sim.inject("stale", venue=SPOT)
        assert len(await book_frames(sim, s, 3)) == 2
        sim.inject("depth_gap", venue=SPOT)
        snapshot = sim.core.market(SPOT, "BTCUSDT").update_id  # what REST depth shows at subscription
        diffs = [json.loads(t) for t in await book_frames(sim, s, 3, "/ws/btcusdt@depth@100ms")]
    # the first diff is missing: a sequence gap against the snapshot the client must resync on
    assert [d["U"] for d in diffs] == [snapshot + 2, snapshot + 3]


# ---------------------------------------------------------------------------------------- REST
async def test_http_429_burst_carries_retry_after_then_clears():
    async with world() as (sim, s):
        sim.inject("http_429", venue=SPOT, count=2, retry_after_s=7)
        answers = [await call(s, sim, SPOT, "GET", "/api/v3/openOrders", symbol="BTCUSDT") for _ in range(3)]
    for status, headers, body in answers[:2]:
        assert status == 429 and headers["Retry-After"] == "7" and body["code"] == -1003
        assert "Too much request weight used" in body["msg"]
    assert answers[2][0] == 200


async def test_maintenance_answers_503_until_the_window_ends_on_the_sim_clock():
    async with world() as (sim, s):
        sim.inject("maintenance", venue=USDM, duration_ms=60_000)
        status, _, body = await call(s, sim, USDM, "GET", "/fapi/v1/openOrders", symbol="BTCUSDT")
        assert (status, body) == (503, {"code": -1016, "msg": "Service Unavailable."})
        status, _, _ = await call(s, sim, SPOT, "GET", "/api/v3/openOrders", symbol="BTCUSDT")
        assert status == 200  # the other product is up
        sim.advance(61_000)
        status, _, _ = await call(s, sim, USDM, "GET", "/fapi/v1/openOrders", symbol="BTCUSDT")
        assert status == 200


@pytest.mark.parametrize(("kind", "status", "code"), [("http_5xx", 503, -1000), ("reject", 400, -2010)])
async def test_armed_5xx_and_reject_on_a_new_order(kind, status, code):
    async with world() as (sim, s):
        sim.inject(kind, venue=SPOT)
        got = await call(s, sim, SPOT, "POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET",
                         quantity="0.01", newClientOrderId="f-1")
        assert (got[0], got[2]["code"]) == (status, code)
        executed = [o.client_order_id for o in sim.core.all_orders("alice", SPOT)]
        assert executed == (["f-1"] if kind == "http_5xx" else [])  # 5xx: unknown, it did execute


async def test_http_timeout_armed_answers_1007():
    async with world("timeout_ms=20") as (sim, s):
        sim.inject("http_timeout", venue=SPOT)
        status, _, body = await call(s, sim, SPOT, "GET", "/api/v3/openOrders", symbol="BTCUSDT")
    assert status == 503 and body["code"] == -1007


# ---------------------------------------------------------------------------------------- orders
async def _ioc_arrivals(order: str) -> list[str]:
    """What a client sees first for a market order: its REST reply or its stream events."""
    async with world("ioc_gap_ms=150") as (sim, s), spot_user_stream(sim, s) as ws:
        sim.inject("ioc_ordering", order=order, venue=SPOT)
        seen: list[str] = []

        async def read_stream():
            msg = await ws.receive(timeout=5)
            seen.append(json.loads(msg.data)["event"]["e"])

        async def place():
            status, _, body = await call(s, sim, SPOT, "POST", "/api/v3/order", symbol="BTCUSDT", side="BUY",
                                         type="MARKET", quantity="0.01")
            assert status == 200 and body["status"] == "FILLED"
            seen.append("rest")

        await asyncio.gather(read_stream(), place())
        assert sim.faults.counts[f"ioc_{order}"] == 1
        return seen


async def test_ioc_rest_reply_first():
    assert await _ioc_arrivals("rest_first") == ["rest", "executionReport"]


async def test_ioc_stream_events_first():
    assert await _ioc_arrivals("stream_first") == ["executionReport", "rest"]


async def test_partial_fill_of_an_ioc_order_expires_the_rest():
    async with world() as (sim, s), spot_user_stream(sim, s) as ws:
        m = sim.core.market(SPOT, "BTCUSDT")
        sim.inject("partial_fill", venue=SPOT, symbol="BTCUSDT", fraction=0.3)
        status, _, body = await call(s, sim, SPOT, "POST", "/api/v3/order", symbol="BTCUSDT", side="BUY",
                                     type="LIMIT", timeInForce="IOC", quantity="0.1", price=str(m.ask_price))
        reports = [e for e in events(await texts(ws)) if e["e"] == "executionReport"]
    assert status == 200 and body["status"] == "EXPIRED" and D(body["executedQty"]) == D("0.03")
    assert [(r["x"], r["X"]) for r in reports] == [("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED"),
                                                   ("EXPIRED", "EXPIRED")]
    assert D(reports[1]["l"]) == D("0.03")


async def test_liquidation_sends_an_autoclose_order_and_account_update():
    async with world() as (sim, s), usdm_user_stream(sim, s) as ws:
        status, _, _ = await call(s, sim, USDM, "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY",
                                  type="MARKET", quantity="0.2")
        assert status == 200
        await texts(ws)
        sim.inject("liquidate", account="alice", venue=USDM, symbol="BTCUSDT")
        got = events(await texts(ws))
        _, _, trades = await call(s, sim, USDM, "GET", "/fapi/v1/userTrades", symbol="BTCUSDT")
    updates = [e["o"] for e in got if e["e"] == "ORDER_TRADE_UPDATE"]
    assert [(u["x"], u["X"]) for u in updates] == [("NEW", "NEW"), ("CALCULATED", "FILLED")]
    assert all(u["c"].startswith("autoclose-") and u["o"] == "LIQUIDATION" and u["S"] == "SELL" for u in updates)
    assert D(updates[1]["l"]) == D("0.2")
    account = next(e["a"] for e in got if e["e"] == "ACCOUNT_UPDATE")
    assert account["m"] == "ORDER" and D(account["P"][0]["pa"]) == 0
    assert sim.core.positions("alice", USDM)["BTCUSDT"].qty == 0
    assert trades[-1]["orderId"] == updates[0]["i"] and D(trades[-1]["qty"]) == D("0.2")  # a fill like any


async def test_liquidate_without_a_position_is_refused():
    async with world() as (sim, _):
        with pytest.raises(OrderRejected):
            sim.inject("liquidate", account="alice", venue=USDM, symbol="BTCUSDT")


# ---------------------------------------------------------------------------------------- accounts
async def test_spot_deposit_and_withdrawal_send_balance_update_then_account_position():
    async with world() as (sim, s), spot_user_stream(sim, s) as ws:
        sim.inject("deposit", account="alice", venue=SPOT, asset="BTC", amount="0.25")
        sim.inject("withdraw", account="alice", venue=SPOT, asset="USDT", amount="100.5")
        got = events(await texts(ws))
        _, _, account = await call(s, sim, SPOT, "GET", "/api/v3/account")
        with pytest.raises(OrderRejected) as exc:  # more than is free
            sim.inject("withdraw", account="alice", venue=SPOT, asset="BTC", amount="5")
    assert exc.value.reason is RejectReason.INSUFFICIENT_BALANCE
    assert [e["e"] for e in got] == ["balanceUpdate", "outboundAccountPosition"] * 2
    assert (got[0]["a"], got[0]["d"], got[2]["a"], got[2]["d"]) == ("BTC", "0.25000000", "USDT", "-100.50000000")
    assert got[1]["B"] == [{"a": "BTC", "f": "1.25000000", "l": "0.00000000"}]
    balances = {b["asset"]: D(b["free"]) for b in account["balances"]}
    assert balances["BTC"] == D("1.25") and balances["USDT"] == D("99899.5")


async def test_usdm_deposit_and_withdrawal_send_account_update_with_their_reason():
    async with world() as (sim, s), usdm_user_stream(sim, s) as ws:
        sim.inject("deposit", account="alice", venue=USDM, asset="USDT", amount="1000")
        sim.inject("withdraw", account="alice", venue=USDM, asset="USDT", amount="250")
        got = [e["a"] for e in events(await texts(ws)) if e["e"] == "ACCOUNT_UPDATE"]
    assert [(a["m"], a["B"][0]["bc"], a["B"][0]["wb"]) for a in got] == [("DEPOSIT", "1000", "51000"),
                                                                         ("WITHDRAW", "-250", "50750")]
    assert all(a["P"] == [] for a in got)


async def test_halt_is_break_in_exchange_info_rejects_new_orders_and_freezes_the_book():
    async with world() as (sim, s):
        m = sim.core.market(SPOT, "BTCUSDT")
        resting, _ = sim.core.place_order("alice", SPOT, "BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.01"),
                                          D("50000"), client_order_id="rest-1")
        sim.inject("halt", venue=SPOT, symbol="BTCUSDT", duration_ms=120_000)
        sim.inject("halt", venue=USDM, symbol="BTCUSDT")
        async with s.get(sim.url(SPOT) + "/api/v3/exchangeInfo") as r:
            assert (await r.json())["symbols"][0]["status"] == "BREAK"
        async with s.get(sim.url(USDM) + "/fapi/v1/exchangeInfo") as r:
            assert (await r.json())["symbols"][0]["status"] == "SETTLING"
        spot = await call(s, sim, SPOT, "POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET",
                          quantity="0.01")
        usdm = await call(s, sim, USDM, "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET",
                          quantity="0.01")
        assert (spot[0], spot[2]) == (400, {"code": -2010, "msg": "Market is closed."})
        assert (usdm[0], usdm[2]["code"]) == (400, -4140)
        frozen = m.update_id
        assert await book_frames(sim, s, 2) == []  # no trading, no book updates
        assert m.update_id == frozen
        status, _, _ = await call(s, sim, SPOT, "DELETE", "/api/v3/order", symbol="BTCUSDT",
                                  origClientOrderId="rest-1")
        assert status == 200 and resting.status.value == "CANCELED"  # cancels still work
        sim.advance(120_000)  # the halt's duration on the replay clock
        async with s.get(sim.url(SPOT) + "/api/v3/exchangeInfo") as r:
            assert (await r.json())["symbols"][0]["status"] == "TRADING"
        status, _, _ = await call(s, sim, SPOT, "POST", "/api/v3/order", symbol="BTCUSDT", side="BUY",
                                  type="MARKET", quantity="0.01")
        assert status == 200 and m.update_id > frozen


async def test_an_armed_book_fault_waits_for_a_published_update():
    async with world() as (sim, s):
        sim.inject("nan_price", venue=SPOT, symbol="BTCUSDT")
        async with s.ws_connect(sim.url(SPOT, "ws") + "/ws/btcusdt@trade"):
            await asyncio.sleep(0.05)
            sim.advance(60_000)  # four updates with no book subscriber: the shot is not spent on them
        frames = [json.loads(t) for t in await book_frames(sim, s, 2)]
    assert [f["b"] for f in frames][0] == "NaN" and frames[1]["b"] != "NaN"
    assert sim.faults.counts["nan_price"] == 1


def test_new_kinds_parse_from_the_faults_string():
    from ate.config.sim import FaultSpec

    spec = FaultSpec.model_validate("crossed_book=0.01,spike=0.001,spike_factor=5,ws_reorder=0.1,http_429=0.02,"
                                    "retry_after_s=3,maintenance_ms=5000,ioc_stream_first=0.5,partial_fill=0.2,"
                                    "liquidate=0.001,halt=0.0001,halt_ms=30000")
    assert (spec.crossed_book, spec.spike_factor, spec.retry_after_s, spec.halt_ms) == (0.01, 5, 3, 30000)
    for bad in ("spike_factor=0.5", "drop_factor=2", "partial_fraction=1", "http_429=1.5"):
        with pytest.raises(ValueError):
            FaultSpec.model_validate(bad)
