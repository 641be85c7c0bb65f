"""Issue 13's findings 1, 4, 7 (liquidation) and 9 over the simulator's wire, with its fault kinds.

1: an IOC partly filled whose REST reply (EXPIRED, executedQty 0.03 of 0.04) arrives before the stream's
   trade: the fill is booked once, the order ends EXPIRED with 0.03, the user stream lives on.
Liquidation: the venue's own close-out (USD-M `x:"CALCULATED"`, client id autoclose-…) is an external
   fill with an alert; positions and risk follow it.
9: shadow, then canary on one store: no client order id is reused, nothing escapes a stream.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_support import (
    ACCOUNT,
    PERP_2025,
    SPOT_2025,
    assert_venue_orders_known,
    data_present,
    settle,
    sim_config,
    sim_orders,
    stop_engine,
    world,
)

from ate.config import parse_config
from ate.engine import Engine
from ate.model import OrderIntent, OrderStatus, Side, TimeInForce
from ate.model.intent import Purpose
from ate.store import StoreBusy

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(90)]

D = Decimal
START_2025 = 1748822400000  # 2025-06-02: spot and USD-M perp both replay real 1m bars
QUIET = {"arbitrage": {"enabled": False}, "funding_carry": {"enabled": False}, "directional": {"enabled": False}}
SECTIONS = {"strategies": QUIET, "canary": {"initial_capital": 10000, "max_position_size": 0.05,
                                            "daily_loss_limit": 300}}


def ioc(engine: Engine, market: str, side: Side, qty: str, *, cross_bps: int = 20):
    venue, _, symbol = market.partition(":")
    book = engine.core.books[market]
    px = book.ask * (1 + D(cross_bps) / 10_000) if side is Side.BUY else book.bid * (1 - D(cross_bps) / 10_000)
    inst = engine.core.portfolio.instruments[market]
    with engine.core.unit():
        return engine.core.orders.submit(OrderIntent(venue, symbol, side, D(qty), inst.round_price(px, side),
                                                     "manual", Purpose.ENTRY, tif=TimeInForce.IOC))


async def test_ioc_rest_reply_before_the_trade_books_the_partial_fill_once(tmp_path, monkeypatch):
    async with world(tmp_path, monkeypatch, mode="canary", engine_sections=SECTIONS) as (sim, engine, drive, _):
        await drive.run(60_000, 15_000)
        sim.inject("ioc_ordering", order="rest_first", venue="binance-spot")
        sim.inject("partial_fill", venue="binance-spot", symbol="BTCUSDT", fraction=0.75)
        order = ioc(engine, "binance:BTCUSDT", Side.BUY, "0.004")
        assert order is not None
        stored = engine.store.get_order
        assert await settle(lambda: stored(order.client_order_id).status is OrderStatus.EXPIRED, rounds=3000)
        venue = [f for f in sim.core.trades_for(ACCOUNT, "binance-spot", "BTCUSDT")]
        filled = sum((f.qty for f in venue), D(0))
        assert D(0) < filled < D("0.004")
        assert stored(order.client_order_id).filled_qty == filled
        assert sorted(f.trade_id for f in engine.store.fills()) == sorted(f.trade_id for f in venue)
        held = filled - sum((f.fee for f in venue if f.fee_asset == "BTC"), D(0))  # the buy's fee is taken in BTC
        assert engine.core.portfolio.position("binance:BTCUSDT").qty == held == engine.core.risk.position(
            "binance:BTCUSDT")
        # the user stream survived: a second order's fill still arrives over it
        second = ioc(engine, "binance:BTCUSDT", Side.SELL, "0.002")
        assert await settle(lambda: stored(second.client_order_id).status is OrderStatus.FILLED, rounds=3000)
        assert engine.core.portfolio.position("binance:BTCUSDT").qty == held - D("0.002")


async def test_a_liquidation_is_an_external_fill_with_an_alert(tmp_path, monkeypatch):
    cfg = sim_config(start_ms=START_2025, spot_data=SPOT_2025, perp_data=PERP_2025, backpack_data=PERP_2025)
    async with world(tmp_path, monkeypatch, mode="canary", sim_cfg=cfg, engine_sections=SECTIONS) as (
            sim, engine, drive, _):
        await drive.run(60_000, 15_000)
        order = ioc(engine, "binance_usdm:BTCUSDT", Side.BUY, "0.003")
        stored = engine.store.get_order
        assert await settle(lambda: stored(order.client_order_id).status is OrderStatus.FILLED, rounds=3000)
        sim.inject("liquidate", account=ACCOUNT, venue="binance-usdm", symbol="BTCUSDT")
        await drive.run(30_000, 5_000)
        assert await settle(lambda: bool(engine.store.events(kind="external_fill")), rounds=3000)
        ext = [f for f in engine.store.fills() if f.strategy == "external"]
        assert [(f.side, f.qty) for f in ext] == [(Side.SELL, D("0.003"))]
        assert engine.core.portfolio.position("binance_usdm:BTCUSDT").qty == 0
        assert engine.core.risk.position("binance_usdm:BTCUSDT") == 0


async def test_shadow_then_canary_on_one_store_never_reuse_an_order_id(tmp_path, monkeypatch):
    async with world(tmp_path, monkeypatch, mode="shadow", engine_sections=SECTIONS,
                     start_engine=False) as (sim, _, drive, raw):
        shadow = Engine(parse_config(raw), clock=drive.clock)
        await shadow.start()
        drive.engine = shadow
        await drive.run(60_000, 15_000)
        first = ioc(shadow, "binance:BTCUSDT", Side.BUY, "0.002")
        assert first is not None and shadow.store.get_order(first.client_order_id) is not None
        canary = Engine(parse_config({**raw, "mode": "canary"}), clock=drive.clock)
        with pytest.raises(StoreBusy):  # two engines never share a store, whatever their modes
            await canary.start()
        await canary.stop()
        await stop_engine(shadow, drive)
        canary = Engine(parse_config({**raw, "mode": "canary"}), clock=drive.clock)
        await canary.start()
        try:
            drive.engine = canary
            await drive.run(30_000, 15_000)
            books_before = canary.stats.books
            again = ioc(canary, "binance:BTCUSDT", Side.BUY, "0.002")  # the same strategy's first order again
            assert again is not None, canary.core.orders.stats.rejected_by_risk
            assert again.client_order_id != first.client_order_id
            stored = canary.store.get_order
            assert await settle(lambda: stored(again.client_order_id).status is OrderStatus.FILLED, rounds=3000)
            await drive.run(30_000, 15_000)
            assert canary.stats.books > books_before  # the market-data stream lives on
            assert [o.client_order_id for o in sim_orders(sim)] == [again.client_order_id]
            assert_venue_orders_known(sim, canary.store)
        finally:
            await stop_engine(canary, drive)


async def test_a_handler_that_raises_never_ends_the_user_stream(tmp_path, monkeypatch):
    """Every stream handler is supervised: the exception is logged, the stream restarts, and the reconnect's
    reconciliation books what the failed handler missed — once."""
    async with world(tmp_path, monkeypatch, mode="canary", engine_sections=SECTIONS) as (sim, engine, drive, _):
        await drive.run(60_000, 15_000)
        feed, failures = engine.feed, []
        real = feed.on_order

        def broken_once(order, fill):
            if not failures:
                failures.append(order.client_order_id)
                raise RuntimeError("a bug in a handler")
            real(order, fill)

        monkeypatch.setattr(feed, "on_order", broken_once)
        stored = engine.store.get_order
        first = ioc(engine, "binance:BTCUSDT", Side.BUY, "0.002")
        assert await settle(lambda: stored(first.client_order_id).filled_qty == D("0.002"), rounds=3000)
        assert failures == [first.client_order_id]
        second = ioc(engine, "binance:BTCUSDT", Side.SELL, "0.002")
        assert await settle(lambda: stored(second.client_order_id).status is OrderStatus.FILLED, rounds=3000)
        venue = sim.core.trades_for(ACCOUNT, "binance-spot", "BTCUSDT")
        assert sorted(f.trade_id for f in engine.store.fills()) == sorted(f.trade_id for f in venue)
        # bought 0.002, of which the venue kept its fee in BTC, then sold 0.002
        assert engine.core.portfolio.position("binance:BTCUSDT").qty == -sum(f.fee for f in venue
                                                                             if f.fee_asset == "BTC")
