"""A liquidation that happened while the engine was down is one external liquidation with an alert, never a
"withdrawal": the venue's close-out trade is an external fill, and what the venue took beside the trade (its
clearance fee, visible only in the account's difference) is booked with it as a liquidation loss. A transfer
would move the daily-loss baseline and hide that loss from the daily limit."""

from __future__ import annotations

from contextlib import asynccontextmanager
from decimal import Decimal

import pytest
from engine_support import ACCOUNT, PERP_2025, SPOT_2025, data_present, settle, sim_config, world
from test_engine_ledger_findings import SECTIONS, START_2025, ioc
from test_engine_resume import engine_wallet, start, stop, venue_wallet

from ate.model import OrderStatus, Side

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(90)]

D = Decimal
FEE = D("0.01")  # of the closed notional


def liquidate(sim):
    """The venue liquidates the BTC perp long with a clearance fee of `FEE`; returns its close-out trade."""
    close_out = sim.inject("liquidate", account=ACCOUNT, venue="binance-usdm", symbol="BTCUSDT",
                           clearance_fee=str(FEE))
    (trade,) = [f for f in sim.core.trades_for(ACCOUNT, "binance-usdm", "BTCUSDT")
                if f.client_order_id == close_out.client_order_id]
    return trade


@asynccontextmanager
async def long_perp_then_down(tmp_path, monkeypatch, *, after_fill_ms: int = 0):
    """A canary engine buys 0.003 BTC perp (IOC, filled) and stops with its orders left alone: the test then
    moves the venue on while the engine is down. Yields (sim, drive, raw, the stopped engine)."""
    cfg = sim_config(start_ms=START_2025, spot_data=SPOT_2025, perp_data=PERP_2025, backpack_data=PERP_2025)
    sections = {**SECTIONS, "shutdown": {"cancel_orders": False}}
    async with world(tmp_path, monkeypatch, mode="canary", sim_cfg=cfg, engine_sections=sections,
                     start_engine=False) as (sim, _, drive, raw):
        a = await start(raw, drive.clock, drive)
        await drive.run(60_000, 15_000)
        order = ioc(a, "binance_usdm:BTCUSDT", Side.BUY, "0.003")
        assert await settle(lambda: a.store.get_order(order.client_order_id).status is OrderStatus.FILLED,
                            rounds=3000)
        if after_fill_ms:
            await drive.run(after_fill_ms, 15_000)
        await stop(a, drive.clock, drive)
        yield sim, drive, raw, a


async def test_a_liquidation_while_down_is_one_liquidation_not_a_withdrawal(tmp_path, monkeypatch):
    async with long_perp_then_down(tmp_path, monkeypatch, after_fill_ms=30_000) as (sim, drive, raw, a):
        clock = drive.clock

        await drive.run(120_000, 15_000)  # while the engine is down the venue liquidates the long
        wallet_before = sim.core.balances(ACCOUNT, "binance-usdm")["USDT"].total
        trade = liquidate(sim)
        fee = (trade.qty * trade.price * FEE).quantize(D("0.00000001"))
        assert sim.core.balances(ACCOUNT, "binance-usdm")["USDT"].total == wallet_before + trade.realized_pnl - fee

        restarted = clock.now_ms()
        b = await start(raw, clock, drive)
        await drive.run(5_000, 1_000)
        try:
            # the close-out trade: one external fill, by its trade id
            ext = [f for f in b.store.fills() if f.strategy == "external"]
            assert [(f.trade_id, f.side, f.qty) for f in ext] == [(trade.trade_id, Side.SELL, D("0.003"))]
            # the clearance fee: part of the liquidation, a loss — no transfer, no withdrawal alert
            transfers = [e for e in b.store.ledger(kind="transfer") if e["venue"] == "binance_usdm"]
            assert [e["ref"] for e in transfers] == [e["ref"] for e in a.store.ledger(kind="transfer")
                                                     if e["venue"] == "binance_usdm"]  # the opening balance only
            assert not b.store.events(kind="external_transfer")
            (entry,) = b.store.ledger(kind="liquidation")
            assert (entry["venue"], entry["asset"], entry["amount"]) == ("binance_usdm", "USDT", -fee)
            (alert,) = b.store.events(kind="liquidation")
            assert alert.severity.value == "critical" and D(alert.data["amount"]) == -fee
            assert engine_wallet(b, "binance_usdm") == venue_wallet(sim, "binance-usdm")
            assert b.core.portfolio.position("binance_usdm:BTCUSDT").qty == 0 == b.core.risk.position(
                "binance_usdm:BTCUSDT")
            # never a flow: the daily-loss baseline and the equity series' flows do not absorb it
            await drive.run(60_000, 15_000)  # a timer: equity recorded with the flows since the last snapshot
            snapshots = b.store.equity_series(since_ms=restarted)
            assert snapshots and not [f for _, _, f in snapshots if f]
            assert b.core.daily.loss >= fee
        finally:
            await stop(b, clock, drive)

        c = await start(raw, clock, drive)  # booked once: a further start books nothing new
        try:
            assert len(c.store.ledger(kind="liquidation")) == 1 and len(c.store.events(kind="liquidation")) == 1
            assert not c.store.events(kind="external_transfer")
            assert engine_wallet(c, "binance_usdm") == venue_wallet(sim, "binance-usdm")
        finally:
            await stop(c, clock, drive)


async def test_a_liquidation_whose_trade_is_never_seen_is_still_no_withdrawal(tmp_path, monkeypatch):
    """The venue's trade history no longer holds the close-out when the engine comes back (Binance keeps
    USD-M trades for a limited time): the position difference is an external fill at an assumed price, and
    the rest of the liquidation's P&L — whichever sign — is booked with it, not as a transfer."""
    async with long_perp_then_down(tmp_path, monkeypatch) as (sim, drive, raw, a):
        clock = drive.clock
        await drive.run(20 * 60_000, 60_000)  # the market moves on while the engine is down
        trade = liquidate(sim)
        a.store.set_state("cursor:binance_usdm:BTCUSDT", trade.trade_id)  # the history starts after it

        restarted = clock.now_ms()
        b = await start(raw, clock, drive)
        try:
            ext = [f for f in b.store.fills() if f.strategy == "external"]
            assert [(f.trade_id.startswith("reconcile:"), f.side, f.qty) for f in ext] == [(True, Side.SELL,
                                                                                             D("0.003"))]
            assert not b.store.events(kind="external_transfer")
            assert [e["venue"] for e in b.store.ledger(kind="transfer") if e["ts_ms"] >= restarted] == []
            (entry,) = b.store.ledger(kind="liquidation")
            assert entry["venue"] == "binance_usdm" and entry["asset"] == "USDT" and entry["amount"] != 0
            assert len(b.store.events(kind="liquidation")) == 1
            # the fill at the assumed price and the rest together are what the venue's wallet lost
            assert engine_wallet(b, "binance_usdm") == venue_wallet(sim, "binance-usdm")
            assert b.core.portfolio.position("binance_usdm:BTCUSDT").qty == 0
        finally:
            await stop(b, clock, drive)
