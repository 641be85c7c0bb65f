"""ccxt 4.5.90, unmodified, trades against the simulator; only URLs, keys and options change.

Options used (documented in ate.sim.binance): ``fetchCurrencies``/``fetchMargins`` False (no /sapi),
``fetchMarkets.types`` limited to the served product, ``adjustForTimeDifference`` True (the simulated
clock runs on replay time, so clients sync to /time as they would against a skewed venue).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import ccxt.async_support as ccxt
import ccxt.pro as ccxtpro
import pytest
from sim_core_support import KEY, SECRET

from ate.model import OrderStatus

OPTIONS = {"fetchCurrencies": False, "fetchMargins": False, "adjustForTimeDifference": True}


def spot_client(sim, pro: bool = False):
    cls = ccxtpro.binance if pro else ccxt.binance
    ex = cls({"apiKey": KEY, "secret": SECRET,
              "options": {**OPTIONS, "defaultType": "spot", "fetchMarkets": {"types": ["spot"]}}})
    rest = sim.url("binance-spot")
    for k in ("public", "private", "v1"):
        ex.urls["api"][k] = ex.urls["api"][k].replace("https://api.binance.com", rest)
    if pro:
        ex.urls["api"]["ws"]["spot"] = sim.url("binance-spot", "ws") + "/ws"
    return ex


def usdm_client(sim, pro: bool = False):
    cls = ccxtpro.binanceusdm if pro else ccxt.binanceusdm
    ex = cls({"apiKey": KEY, "secret": SECRET, "options": OPTIONS})
    rest = sim.url("binance-usdm")
    for k, v in list(ex.urls["api"].items()):
        if isinstance(v, str) and v.startswith("https://fapi.binance.com"):
            ex.urls["api"][k] = v.replace("https://fapi.binance.com", rest)
    if pro:
        # ccxt routes it itself: ".../ws" becomes ".../public/ws", ".../market/ws" or ".../private/ws"
        ex.urls["api"]["ws"]["linear"] = sim.url("binance-usdm", "ws") + "/ws"
    return ex


async def test_ccxt_binance_spot_trades_end_to_end(binance_sim):
    sim = binance_sim
    m = sim.core.market("binance-spot", "BTCUSDT")
    ex = spot_client(sim)
    try:
        await ex.load_markets()
        assert ex.markets["BTC/USDT"]["precision"]["price"] == 0.01
        ob = await ex.fetch_order_book("BTC/USDT", 5)
        assert ob["nonce"] == m.update_id
        assert D(str(ob["bids"][0][0])) == m.bid_price and D(str(ob["asks"][0][0])) == m.ask_price
        assert len(ob["bids"]) == 5
        ticker = await ex.fetch_ticker("BTC/USDT")
        assert D(str(ticker["bid"])) == m.bid_price and D(str(ticker["ask"])) == m.ask_price
        limit_price = float(m.bid_price - 500)
        resting = await ex.create_order("BTC/USDT", "limit", "buy", 0.01, limit_price)
        assert resting["status"] == "open"
        market = await ex.create_order("BTC/USDT", "market", "buy", 0.002)
        assert market["status"] == "closed" and market["filled"] == 0.002
        assert D(str(market["average"])) == m.ask_price
        opened = await ex.fetch_open_orders("BTC/USDT")
        assert [o["id"] for o in opened] == [resting["id"]]
        canceled = await ex.cancel_order(resting["id"], "BTC/USDT")
        assert canceled["status"] == "canceled"
        assert sim.core.get_order("alice", "binance-spot", "BTCUSDT", int(resting["id"])).status is \
            OrderStatus.CANCELED
        balance = await ex.fetch_balance()
        core_bal = sim.core.balances("alice", "binance-spot")
        assert D(str(balance["USDT"]["free"])) == core_bal["USDT"].free
        assert D(str(balance["BTC"]["total"])) == D(1) + D("0.002") - D("0.002") * D("0.001")
        trades = await ex.fetch_my_trades("BTC/USDT")
        assert [(t["order"], t["amount"], t["fee"]["currency"]) for t in trades] == [(market["id"], 0.002, "BTC")]
    finally:
        await ex.close()


async def test_ccxt_binanceusdm_trades_end_to_end(binance_sim):
    sim = binance_sim
    m = sim.core.market("binance-usdm", "BTCUSDT")
    ex = usdm_client(sim)
    try:
        await ex.load_markets()
        sym = "BTC/USDT:USDT"
        assert ex.markets[sym]["limits"]["cost"]["min"] == 100
        ob = await ex.fetch_order_book(sym, 10)
        assert D(str(ob["bids"][0][0])) == m.bid_price and ob["nonce"] == m.update_id
        ticker = await ex.fetch_ticker(sym)
        assert D(str(ticker["last"])) == m.last_price
        resting = await ex.create_order(sym, "limit", "buy", 0.01, float(m.bid_price - 1000))
        assert resting["status"] == "open"
        short = await ex.create_order(sym, "market", "sell", 0.01)
        assert short["status"] == "closed"
        assert [o["id"] for o in await ex.fetch_open_orders(sym)] == [resting["id"]]
        assert (await ex.cancel_order(resting["id"], sym))["status"] == "canceled"
        trades = await ex.fetch_my_trades(sym)
        assert [(t["order"], t["side"], D(str(t["price"]))) for t in trades] == [(short["id"], "sell", m.bid_price)]
        balance = await ex.fetch_balance()
        fee = D("0.01") * m.bid_price * D("0.0005")
        wallet = next(a for a in balance["info"]["assets"] if a["asset"] == "USDT")
        assert D(wallet["walletBalance"]) == D(50000) - fee
        pos = sim.core.positions("alice", "binance-usdm")["BTCUSDT"]
        assert D(wallet["unrealizedProfit"]) == (m.mark - pos.entry_price) * pos.qty
        positions = await ex.fetch_positions([sym])
        assert [(p["side"], p["contracts"]) for p in positions] == [("short", 0.01)]
    finally:
        await ex.close()


async def test_ccxt_errors_carry_the_venue_codes(binance_sim):
    ex = usdm_client(binance_sim)
    spot = spot_client(binance_sim)
    try:
        await ex.load_markets()
        await spot.load_markets()
        with pytest.raises(ccxt.ExchangeError) as exc:  # notional 90 < 100
            await ex.create_order("BTC/USDT:USDT", "limit", "buy", 0.001, 90000)
        assert '"code":-4164' in str(exc.value)
        with pytest.raises(ccxt.ExchangeError) as exc:  # 400 BTC at 20x needs ~2.1M USDT
            await ex.create_order("BTC/USDT:USDT", "market", "buy", 400)
        assert '"code":-2019' in str(exc.value)
        with pytest.raises(ccxt.InsufficientFunds) as exc:
            await spot.create_order("BTC/USDT", "limit", "buy", 2, 100000)
        assert "insufficient balance" in str(exc.value)
        with pytest.raises(ccxt.OrderNotFound) as exc:
            await spot.cancel_order("999999", "BTC/USDT")
        assert "Unknown order sent." in str(exc.value)
    finally:
        await ex.close()
        await spot.close()


async def _watch_until(coro_factory, pred, sim, step_ms=15_000, rounds=40):
    """Call the watch repeatedly while the replay moves on, until ``pred`` holds for the result."""
    result = None
    for _ in range(rounds):
        task = asyncio.ensure_future(coro_factory())
        for _ in range(20):
            if task.done():
                break
            sim.advance(step_ms)
            await asyncio.sleep(0.01)
        result = await asyncio.wait_for(task, 5)
        if pred(result):
            return result
    raise AssertionError(f"condition never held; last {result}")


async def test_ccxt_pro_spot_watch_order_book_and_ticker(binance_sim):
    sim = binance_sim
    m = sim.core.market("binance-spot", "BTCUSDT")
    ex = spot_client(sim, pro=True)
    try:
        await ex.load_markets()
        book = await _watch_until(lambda: ex.watch_order_book("BTC/USDT"),
                                  lambda b: len(b["bids"]) > 0, sim)
        await asyncio.sleep(0.05)
        book = await _watch_until(lambda: ex.watch_order_book("BTC/USDT"),
                                  lambda b: D(str(b["bids"][0][0])) == m.bid_price, sim)
        assert D(str(book["asks"][0][0])) == m.ask_price
        assert book["bids"][0][0] < book["asks"][0][0]
        assert len(book["bids"]) == m.depth_levels  # stale levels were deleted by the diffs
        ticker = await _watch_until(lambda: ex.watch_ticker("BTC/USDT"), lambda t: t["last"] is not None, sim)
        assert ticker["symbol"] == "BTC/USDT" and ticker["low"] <= ticker["last"] <= ticker["high"]
        assert ticker["open"] == 105137.2  # the first candle of the replayed 24 h window
    finally:
        await ex.close()


async def test_ccxt_pro_usdm_watch_order_book_and_ticker(binance_sim):
    sim = binance_sim
    m = sim.core.market("binance-usdm", "BTCUSDT")
    ex = usdm_client(sim, pro=True)
    try:
        await ex.load_markets()
        book = await _watch_until(lambda: ex.watch_order_book("BTC/USDT:USDT"), lambda b: len(b["bids"]) > 0, sim)
        book = await _watch_until(lambda: ex.watch_order_book("BTC/USDT:USDT"),
                                  lambda b: D(str(b["bids"][0][0])) == m.bid_price, sim)
        assert D(str(book["asks"][0][0])) == m.ask_price
        ticker = await _watch_until(lambda: ex.watch_ticker("BTC/USDT:USDT"), lambda t: t["last"] is not None, sim)
        assert ticker["symbol"] == "BTC/USDT:USDT" and ticker["low"] <= ticker["last"] <= ticker["high"]
    finally:
        await ex.close()
