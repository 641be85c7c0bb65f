"""Review 2 (issue 13 finding 8 / docs/ledger.md "Start = resume"): a deposit while down is a flow, never P&L —
also when a liquidation whose trade was never seen closed a perp in the same window."""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_support import ACCOUNT, data_present, settle
from test_engine_liquidation_while_down import FEE, liquidate, long_perp_then_down
from test_engine_resume import engine_wallet, start, stop, venue_wallet

from ate.model import OrderType, Side, TimeInForce
from ate.trading.core import TradingCore

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(90)]

D = Decimal
DEPOSIT = D("1000")
CURSOR = "cursor:binance_usdm:BTCUSDT"  # the last trade of the perp this engine has seen


async def unseen_liquidation(sim, drive, engine):
    """20 minutes on, the venue liquidates the long while the engine is down; its close-out trade is never
    seen (the engine's cursor is moved past it). Returns the trade."""
    await drive.run(20 * 60_000, 60_000)
    trade = liquidate(sim)
    engine.store.set_state(CURSOR, trade.trade_id)
    return trade


async def test_a_deposit_beside_an_unseen_liquidation_is_a_transfer_not_pnl(tmp_path, monkeypatch):
    async with long_perp_then_down(tmp_path, monkeypatch) as (sim, drive, raw, a):
        clock = drive.clock
        await drive.run(20 * 60_000, 60_000)
        # while down: the user deposits 1000 USDT, then the venue liquidates the long
        sim.inject("deposit", account=ACCOUNT, venue="binance-usdm", asset="USDT", amount=str(DEPOSIT))
        await drive.run(60_000, 15_000)
        a.store.set_state(CURSOR, liquidate(sim).trade_id)  # the close-out trade is never seen

        restarted = clock.now_ms()
        b = await start(raw, clock, drive)
        try:
            assert engine_wallet(b, "binance_usdm") == venue_wallet(sim, "binance-usdm")
            liquidation = sum((e["amount"] for e in b.store.ledger(kind="liquidation")), D(0))
            # the liquidation lost money: what it took is a loss, far below the deposit
            assert liquidation < 0, f"liquidation booked {liquidation:+f}: the deposit became P&L"
            deposits = [e["amount"] for e in b.store.ledger(kind="transfer")
                        if e["venue"] == "binance_usdm" and e["ts_ms"] >= restarted]
            assert deposits, "no transfer booked for the 1000 USDT deposit"
        finally:
            await stop(b, clock, drive)


async def test_a_withdrawal_one_restart_after_an_unseen_liquidation_is_a_transfer(tmp_path, monkeypatch):
    async with long_perp_then_down(tmp_path, monkeypatch) as (sim, drive, raw, a):
        clock = drive.clock
        await unseen_liquidation(sim, drive, a)
        b = await start(raw, clock, drive)
        await stop(b, clock, drive)
        assert len(b.store.ledger(kind="liquidation")) == 1

        await drive.run(60_000, 15_000)
        # while down again: the weekly profit withdrawal
        sim.inject("withdraw", account=ACCOUNT, venue="binance-usdm", asset="USDT", amount="100")
        restarted = clock.now_ms()
        c = await start(raw, clock, drive)
        try:
            assert engine_wallet(c, "binance_usdm") == venue_wallet(sim, "binance-usdm")
            assert len(c.store.ledger(kind="liquidation")) == 1, [
                (e["ref"], e["amount"]) for e in c.store.ledger(kind="liquidation")]
            assert [e["amount"] for e in c.store.ledger(kind="transfer")
                    if e["venue"] == "binance_usdm" and e["ts_ms"] >= restarted] == [D("-100")]
        finally:
            await stop(c, clock, drive)


async def test_a_close_out_seen_after_its_position_difference_is_not_booked_twice(tmp_path, monkeypatch):
    async with long_perp_then_down(tmp_path, monkeypatch) as (sim, drive, raw, a):
        clock = drive.clock
        trade = await unseen_liquidation(sim, drive, a)  # the venue's trade history lags: not in it yet
        key = CURSOR
        (bought,) = a.store.fills()
        b = await start(raw, clock, drive)
        try:
            perp = "binance_usdm:BTCUSDT"
            assert b.core.portfolio.position(perp).qty == 0
            b.store.set_state(key, bought.trade_id)  # ...and then it is (the cursor: the last trade seen)
            b.reconcile_soon("binance_usdm")  # what a user-stream reconnect runs: it fetches the trade
            assert await settle(lambda: any(f.trade_id == trade.trade_id for f in b.store.fills()), rounds=3000)
            assert b.core.portfolio.position(perp).qty == 0, "a phantom position: the close-out booked twice"
            assert b.core.risk.position(perp) == 0
            # the trade was already in the comparison: its P&L is not booked again, and the replay agrees
            assert engine_wallet(b, "binance_usdm") == venue_wallet(sim, "binance-usdm")
            assert [p.qty for p in b.store.positions() if (p.venue, p.symbol) == ("binance_usdm", "BTCUSDT")] == [0]
        finally:
            await stop(b, clock, drive)


async def test_a_manual_trade_after_the_comparison_is_not_taken_for_the_unseen_close_out(tmp_path, monkeypatch):
    """The take-back is only for trades the comparison already counted (dated before it): a trade made after
    it in the same direction as the position difference is a new position."""
    async with long_perp_then_down(tmp_path, monkeypatch) as (sim, drive, raw, a):
        clock = drive.clock
        await unseen_liquidation(sim, drive, a)
        b = await start(raw, clock, drive)
        try:
            perp = "binance_usdm:BTCUSDT"
            assert b.core.portfolio.position(perp).qty == 0
            await drive.run(5_000, 1_000)
            # the user sells by hand: a short the venue holds, after the comparison
            _, fills = sim.core.place_order(ACCOUNT, "binance-usdm", "BTCUSDT", Side.SELL, OrderType.MARKET, D("0.002"),
                                            tif=TimeInForce.IOC, client_order_id="by-hand-1")
            assert fills
            assert await settle(lambda: b.core.portfolio.position(perp).qty == D("-0.002"), rounds=3000)
            assert b.core.risk.position(perp) == D("-0.002")
            assert not [f for f in b.store.fills() if f.trade_id.startswith("compared:")]
        finally:
            await stop(b, clock, drive)


async def deposit_then_liquidate(sim, drive) -> Decimal:
    """While the engine is down: a deposit of `DEPOSIT`, then the venue's close-out (seen); returns its fee."""
    await drive.run(20 * 60_000, 60_000)
    sim.inject("deposit", account=ACCOUNT, venue="binance-usdm", asset="USDT", amount=str(DEPOSIT))
    trade = liquidate(sim)
    return (trade.qty * trade.price * FEE).quantize(D("0.00000001"))


def _window_transfers(engine, restarted: int) -> list[tuple[str, Decimal]]:
    return [(e["ref"].rsplit(":", 1)[0], e["amount"]) for e in engine.store.ledger(kind="transfer")
            if e["venue"] == "binance_usdm" and e["ts_ms"] >= restarted]


async def test_a_deposit_beside_a_seen_close_out_is_a_transfer_and_the_fee_a_loss(tmp_path, monkeypatch):
    """The close-out trade is seen, so only a loss beside it is the liquidation's: without the venue's transfer
    history the deposit and the clearance fee net into one 'deposit' and the fee never reaches the daily loss."""
    async with long_perp_then_down(tmp_path, monkeypatch) as (sim, drive, raw, a):
        clock = drive.clock
        fee = await deposit_then_liquidate(sim, drive)
        restarted = clock.now_ms()
        b = await start(raw, clock, drive)
        try:
            assert _window_transfers(b, restarted) == [("transfer:binance_usdm", DEPOSIT)]
            assert [e["amount"] for e in b.store.ledger(kind="liquidation")] == [-fee]
            assert engine_wallet(b, "binance_usdm") == venue_wallet(sim, "binance-usdm")
        finally:
            await stop(b, clock, drive)


async def test_a_start_interrupted_after_booking_the_deposit_books_the_liquidation_once_after(tmp_path, monkeypatch):
    """The transfers are booked one unit each before the liquidation's: a start that dies between them leaves the
    deposit in the ledger, and the next start must not take it out of the difference a second time."""
    async with long_perp_then_down(tmp_path, monkeypatch) as (sim, drive, raw, a):
        clock = drive.clock
        fee = await deposit_then_liquidate(sim, drive)

        def dies(*_a, **_k):
            raise RuntimeError("killed between the transfer's unit and the liquidation's")

        restarted = clock.now_ms()
        with monkeypatch.context() as m:
            m.setattr(TradingCore, "book_liquidation_cost", dies)
            b = await start(raw, clock, drive)
            await stop(b, clock, drive)
        assert _window_transfers(b, restarted) == [("transfer:binance_usdm", DEPOSIT)]
        assert not b.store.ledger(kind="liquidation")

        c = await start(raw, clock, drive)
        try:
            assert _window_transfers(c, restarted) == [("transfer:binance_usdm", DEPOSIT)]
            assert [e["amount"] for e in c.store.ledger(kind="liquidation")] == [-fee]
            assert engine_wallet(c, "binance_usdm") == venue_wallet(sim, "binance-usdm")
        finally:
            await stop(c, clock, drive)
