"""ccxt, unmodified and on its system clock (no ``adjustForTimeDifference``), trades signed spot and
futures orders against the simulator in the wall clock mode at speed 60: time fields are wall time, and
response fields are those of the reference (/work/shared/reference/exchange-protocols.md §4)."""

from __future__ import annotations

import asyncio
import time

import ccxt.async_support as ccxt
import ccxt.pro as ccxtpro
import pytest
from sim_core_support import KEY, ROOT, SECRET
from sim_wall_support import SPEED, wall_config

from ate.sim.runner import run_simulator

OPTIONS = {"fetchCurrencies": False, "fetchMargins": False}
EIGHT_HOURS = 8 * 3_600_000

# Field lists of the reference, §4.1 (new order RESULT/FULL) and §4.2 (futures order, positionRisk,
# userTrades, premiumIndex)
SPOT_ORDER_FULL = {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime", "price", "origQty",
                   "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty", "status", "timeInForce", "type",
                   "side", "workingTime", "selfTradePreventionMode", "fills"}
SPOT_FILL = {"price", "qty", "commission", "commissionAsset", "tradeId"}
USDM_ORDER = {"orderId", "symbol", "status", "clientOrderId", "price", "avgPrice", "origQty", "executedQty", "cumQty",
              "cumQuote", "timeInForce", "type", "reduceOnly", "closePosition", "side", "positionSide", "stopPrice",
              "workingType", "priceProtect", "origType", "priceMatch", "selfTradePreventionMode", "goodTillDate",
              "updateTime"}
POSITION_RISK = {"symbol", "positionSide", "positionAmt", "entryPrice", "breakEvenPrice", "markPrice",
                 "unRealizedProfit", "liquidationPrice", "isolatedMargin", "notional", "marginAsset",
                 "isolatedWallet", "initialMargin", "maintMargin", "positionInitialMargin", "openOrderInitialMargin",
                 "adl", "bidNotional", "askNotional", "updateTime"}
USER_TRADE = {"buyer", "commission", "commissionAsset", "id", "maker", "orderId", "price", "qty", "quoteQty",
              "realizedPnl", "side", "positionSide", "symbol", "time"}
PREMIUM_INDEX = {"symbol", "markPrice", "indexPrice", "estimatedSettlePrice", "lastFundingRate", "interestRate",
                 "nextFundingTime", "time"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def assert_now(ts: int, what: str) -> None:
    assert abs(ts - now_ms()) < 1000, f"{what}: {ts - now_ms()} ms from the wall clock"


@pytest.fixture
async def wall_sim():
    async with run_simulator(wall_config(), base_dir=ROOT) as sim:
        yield sim


def spot(sim, pro=False):
    ex = (ccxtpro if pro else ccxt).binance({"apiKey": KEY, "secret": SECRET, "options": {
        **OPTIONS, "defaultType": "spot", "fetchMarkets": {"types": ["spot"]}}})
    for k in ("public", "private", "v1"):
        ex.urls["api"][k] = ex.urls["api"][k].replace("https://api.binance.com", sim.url("binance-spot"))
    if pro:
        ex.urls["api"]["ws"]["spot"] = sim.url("binance-spot", "ws") + "/ws"
        ex.urls["api"]["ws"]["ws-api"]["spot"] = sim.url("binance-spot", "ws") + "/ws-api/v3"
    return ex


def usdm(sim, pro=False):
    ex = (ccxtpro if pro else ccxt).binanceusdm({"apiKey": KEY, "secret": SECRET, "options": OPTIONS})
    for k, v in list(ex.urls["api"].items()):
        if isinstance(v, str) and v.startswith("https://fapi.binance.com"):
            ex.urls["api"][k] = v.replace("https://fapi.binance.com", sim.url("binance-usdm"))
    if pro:
        ex.urls["api"]["ws"]["linear"] = sim.url("binance-usdm", "ws") + "/ws"
    return ex


async def test_ccxt_spot_signed_trading_on_the_system_clock(wall_sim):
    ex = spot(wall_sim)
    try:
        await ex.load_markets()
        bought = await ex.create_order("BTC/USDT", "market", "buy", 0.01)
        assert bought["status"] == "closed" and bought["filled"] == 0.01
        assert set(bought["info"]) >= SPOT_ORDER_FULL and set(bought["info"]["fills"][0]) >= SPOT_FILL
        assert_now(bought["timestamp"], "order timestamp")
        resting = await ex.create_order("BTC/USDT", "limit", "buy", 0.01, 20000)
        assert resting["status"] == "open"
        assert_now(int(resting["info"]["workingTime"]), "workingTime")
        canceled = await ex.cancel_order(resting["id"], "BTC/USDT")
        assert canceled["status"] == "canceled"
        trades = await ex.fetch_my_trades("BTC/USDT", since=now_ms() - 600_000)
        assert [t["order"] for t in trades] == [bought["id"]]
        assert_now(trades[0]["timestamp"], "trade time")
        candles = await ex.fetch_ohlcv("BTC/USDT", "1m", limit=3)
        # at speed 60 a wall minute holds an hour of data; the rows end before now
        assert [c[0] % 60_000 for c in candles] == [0, 0, 0] and candles[-1][0] + 60_000 <= now_ms() + 1000
    finally:
        await ex.close()


async def test_ccxt_usdm_signed_trading_positions_and_funding_times(wall_sim):
    ex = usdm(wall_sim)
    try:
        await ex.load_markets()
        sold = await ex.create_order("BTC/USDT:USDT", "market", "sell", 0.01)
        assert set(sold["info"]) >= USDM_ORDER and sold["filled"] == 0.01
        assert_now(int(sold["info"]["updateTime"]), "updateTime")
        (position,) = await ex.fetch_positions(["BTC/USDT:USDT"])
        assert set(position["info"]) >= POSITION_RISK and position["side"] == "short" and position["contracts"] == 0.01
        trades = await ex.fetch_my_trades("BTC/USDT:USDT", since=now_ms() - 600_000)
        assert len(trades) == 1 and set(trades[0]["info"]) >= USER_TRADE
        assert_now(trades[0]["timestamp"], "userTrades time")
        funding = await ex.fetch_funding_rate("BTC/USDT:USDT")
        assert set(funding["info"]) >= PREMIUM_INDEX
        assert_now(funding["timestamp"], "premiumIndex time")
        assert 0 < funding["fundingTimestamp"] - now_ms() <= EIGHT_HOURS // SPEED + 1000
    finally:
        await ex.close()


async def test_ccxt_pro_futures_user_stream_reports_the_fill_at_wall_time(wall_sim):
    ex = usdm(wall_sim, pro=True)
    try:
        await ex.load_markets()
        watcher = asyncio.create_task(ex.watch_orders("BTC/USDT:USDT"))
        await asyncio.sleep(0.5)  # the stream is open before the order goes out
        placed = await ex.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
        orders = await asyncio.wait_for(watcher, 10)
        assert orders[-1]["id"] == placed["id"]
        assert_now(orders[-1]["lastUpdateTimestamp"] or orders[-1]["timestamp"], "ORDER_TRADE_UPDATE time")
    finally:
        await ex.close()


async def test_ccxt_pro_spot_user_stream_reports_the_fill_at_wall_time(wall_sim):
    ex = spot(wall_sim, pro=True)
    try:
        await ex.load_markets()
        watcher = asyncio.create_task(ex.watch_orders("BTC/USDT"))
        await asyncio.sleep(0.5)  # the WS API subscription is in place before the order goes out
        placed = await ex.create_order("BTC/USDT", "market", "buy", 0.01)
        orders = await asyncio.wait_for(watcher, 10)
        assert orders[-1]["id"] == placed["id"]
        assert_now(orders[-1]["timestamp"], "executionReport time")
    finally:
        await ex.close()
