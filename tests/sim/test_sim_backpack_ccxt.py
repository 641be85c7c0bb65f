"""ccxt 4.5.90 (async and pro), unmodified apart from URLs and keys, trades against the Backpack face."""

import asyncio
from decimal import Decimal

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest
from sim_backpack_support import KEY, SEED, backpack_sim

from ate.sim.backpack_face import BackpackFace

PERP = "BTC/USDC:USDC"
SPOT = "BTC/USDC"


def client(module, sim):
    rest, ws = sim.url("backpack"), sim.url("backpack", "ws")
    return module.backpack({"apiKey": KEY, "secret": SEED,
                            "urls": {"api": {"public": rest, "private": rest, "ws": {"public": ws, "private": ws}}}})


def market(sim, symbol):
    return sim.core.markets[("backpack", symbol)]


async def test_ccxt_rest_trading_round_trip():
    async with backpack_sim() as sim:
        ex = client(ccxt_async, sim)
        try:
            markets = await ex.load_markets()
            assert markets[SPOT]["spot"] and markets[SPOT]["precision"] == {"amount": 1e-05, "price": 0.01}
            assert markets[PERP]["swap"] and markets[PERP]["linear"] and markets[PERP]["settle"] == "USDC"
            assert markets[PERP]["precision"]["price"] == 0.1 and markets[PERP]["limits"]["amount"]["min"] == 1e-05

            spot = market(sim, "BTC_USDC")
            book = await ex.fetch_order_book(SPOT, 5)
            assert book["bids"][0][0] == float(spot.bid_price) and book["asks"][0][0] == float(spot.ask_price)
            assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)
            assert len(book["bids"]) == len(book["asks"]) == 5 and book["nonce"] == spot.update_id

            ticker = await ex.fetch_ticker(SPOT)
            assert ticker["last"] == spot.candles[-1].close

            price = spot.bid_price - 1000
            order = await ex.create_order(SPOT, "limit", "buy", 0.01, float(price))
            assert order["status"] == "open" and order["amount"] == 0.01 and order["price"] == float(price)
            open_orders = await ex.fetch_open_orders(SPOT)
            assert [o["id"] for o in open_orders] == [order["id"]]
            balance = await ex.fetch_balance()
            assert Decimal(str(balance["USDC"]["used"])) == Decimal("0.01") * price
            cancelled = await ex.cancel_order(order["id"], SPOT)
            assert cancelled["status"] == "canceled" and await ex.fetch_open_orders(SPOT) == []
            assert (await ex.fetch_balance())["USDC"] == {"free": 100000.0, "used": 0.0, "total": 100000.0}

            ask = spot.ask_price
            filled = await ex.create_order(SPOT, "market", "buy", 0.01)
            assert filled["status"] == "closed" and filled["filled"] == 0.01 and filled["average"] == float(ask)
            balance = await ex.fetch_balance()
            assert Decimal(str(balance["BTC"]["total"])) == Decimal("1.00999")  # 0.01 less the 0.1% taker fee
            assert Decimal(str(balance["USDC"]["total"])) == Decimal(100000) - Decimal("0.01") * ask

            trades = await ex.fetch_my_trades(SPOT)
            assert len(trades) == 1
            t = trades[0]
            assert (t["order"], t["side"], t["takerOrMaker"], t["amount"], t["price"]) == (
                filled["id"], "buy", "taker", 0.01, float(ask))
            assert (t["fee"]["cost"], t["fee"]["currency"]) == (1e-05, "BTC")
            assert t["timestamp"] == sim.clock.now_ms()
        finally:
            await ex.close()


async def test_ccxt_perp_market_order_opens_a_position():
    async with backpack_sim() as sim:
        ex = client(ccxt_async, sim)
        try:
            perp = market(sim, "BTC_USDC_PERP")
            ask = perp.ask_price
            order = await ex.create_order(PERP, "market", "buy", 0.02, params={"clientOrderId": 4242})
            assert order["clientOrderId"] == "4242" and order["filled"] == 0.02
            positions = await ex.fetch_positions()
            assert len(positions) == 1
            assert positions[0]["symbol"] == PERP and positions[0]["info"]["netQuantity"] == "0.02"
            assert Decimal(positions[0]["info"]["entryPrice"]) == ask
        finally:
            await ex.close()


async def drive(sim, until: asyncio.Future, step_ms: int = 15_000) -> None:
    """Move the replay on while a watcher waits; each step lets the frames reach the client."""
    while not until.done():
        sim.advance(step_ms)
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("symbol,market_id", [(PERP, "BTC_USDC_PERP"), (SPOT, "BTC_USDC")])
async def test_ccxt_pro_watch_order_book_tracks_the_core_book(symbol, market_id):
    face = BackpackFace()
    async with backpack_sim(face) as sim:
        ex = client(ccxt_pro, sim)
        try:
            await ex.load_markets()
            watch = asyncio.ensure_future(ex.watch_order_book(symbol))
            while not face.streams.wants(f"depth.{market_id}"):
                await asyncio.sleep(0.001)
            await drive(sim, watch)
            await watch
            # one more book update, then the local book must equal the venue's book exactly
            sim.advance(15_000)
            book = await asyncio.wait_for(ex.watch_order_book(symbol), 10)
            m = market(sim, market_id)
            assert book["nonce"] == m.update_id
            rest = await ex.fetch_order_book(symbol, 20)
            assert book["bids"][:20] == rest["bids"] and book["asks"][:20] == rest["asks"]
            assert book["bids"][0][0] == float(m.bid_price) and book["asks"][0][0] == float(m.ask_price)
        finally:
            await ex.close()


async def test_ccxt_pro_watch_ticker():
    face = BackpackFace()
    async with backpack_sim(face) as sim:
        ex = client(ccxt_pro, sim)
        try:
            await ex.load_markets()
            watch = asyncio.ensure_future(ex.watch_ticker(SPOT))
            while not face.streams.wants("ticker.BTC_USDC"):
                await asyncio.sleep(0.001)
            sim.advance(15_000)
            ticker = await asyncio.wait_for(watch, 10)
            m = market(sim, "BTC_USDC")
            assert ticker["symbol"] == SPOT and ticker["last"] == m.candles[-1].close
            assert ticker["timestamp"] == sim.clock.now_ms()  # µs E turned back into ms
        finally:
            await ex.close()
