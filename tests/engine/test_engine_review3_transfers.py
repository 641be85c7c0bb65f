"""Review 3 (docs/ledger.md "Start = resume" step 3): the venue's transfer history beside a liquidation. A
deposit or withdrawal is a flow booked once by the venue's id, and only the rest of the margin asset's
difference is the liquidation's — whatever the deposit's timing against the comparison's reads."""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_support import ACCOUNT, data_present
from test_engine_liquidation_while_down import FEE, liquidate, long_perp_then_down
from test_engine_resume import engine_wallet, start, stop, venue_wallet

from ate.venues.binance.client import BinanceClient

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(90)]

D = Decimal
DEPOSIT = D("1000")
USDM = "binance_usdm"


def _clearance_fee(trade) -> Decimal:
    return (trade.qty * trade.price * FEE).quantize(D("0.00000001"))


def _flows(engine, since_ms: int) -> Decimal:
    return sum((e["amount"] for e in engine.store.ledger(kind="transfer")
                if e["venue"] == USDM and e["ts_ms"] >= since_ms), D(0))


def _liquidations(engine) -> list[Decimal]:
    return [e["amount"] for e in engine.store.ledger(kind="liquidation")]


def _deposit(sim, amount: Decimal = DEPOSIT) -> None:
    sim.inject("deposit", account=ACCOUNT, venue="binance-usdm", asset="USDT", amount=str(amount))


async def test_a_deposit_that_nets_the_liquidation_to_nothing_still_books_both(tmp_path, monkeypatch):
    """The deposit equals what the venue took beside its close-out: the margin asset shows no difference, yet
    the venue lists a deposit and a loss happened. Skipping a zero difference books neither: the daily loss
    never sees the fee."""
    async with long_perp_then_down(tmp_path, monkeypatch) as (sim, drive, raw, a):
        clock = drive.clock
        await drive.run(20 * 60_000, 60_000)
        fee = _clearance_fee(liquidate(sim))
        _deposit(sim, fee)
        restarted = clock.now_ms()
        b = await start(raw, clock, drive)
        try:
            assert _flows(b, restarted) == fee
            assert _liquidations(b) == [-fee]
            assert engine_wallet(b, USDM) == venue_wallet(sim, "binance-usdm")
            assert b.core.daily.loss >= fee
        finally:
            await stop(b, clock, drive)


async def test_a_deposit_landing_between_the_balance_read_and_the_history_read_is_not_the_liquidations(
        tmp_path, monkeypatch):
    """The history is read after the balances: a deposit landing between the two reads is listed but not in
    the balances compared, so taking it out of the difference books it as the liquidation's loss."""
    async with long_perp_then_down(tmp_path, monkeypatch) as (sim, drive, raw, a):
        clock = drive.clock
        await drive.run(20 * 60_000, 60_000)
        fee = _clearance_fee(liquidate(sim))
        original = BinanceClient.transfers_since
        landed = []

        async def deposit_lands_first(self, since_ms):
            if self.venue == USDM and not landed:
                landed.append(_deposit(sim))
            return await original(self, since_ms)

        restarted = clock.now_ms()
        monkeypatch.setattr(BinanceClient, "transfers_since", deposit_lands_first)
        b = await start(raw, clock, drive)
        try:
            assert landed
            assert _liquidations(b) == [-fee]
            assert _flows(b, restarted) == DEPOSIT
            assert engine_wallet(b, USDM) == venue_wallet(sim, "binance-usdm")
        finally:
            await stop(b, clock, drive)


@pytest.mark.parametrize("gap_ms", [0, 1], ids=["at-the-comparisons-ms", "a-ms-after"])
async def test_a_deposit_inside_the_previous_comparison_is_not_booked_again_beside_a_liquidation(
        tmp_path, monkeypatch, gap_ms):
    """A start's comparison is dated when it begins, its balances read a moment later: a deposit in between is
    in those balances and listed after the comparison's time (or at it). The next start's window, after a
    liquidation, lists it again: booked twice (once as the difference, once by its id), the second copy taken
    out of the liquidation as a loss of the same amount."""
    async with long_perp_then_down(tmp_path, monkeypatch) as (sim, drive, raw, a):
        clock = drive.clock
        await drive.run(20 * 60_000, 60_000)
        original = BinanceClient.balances
        landed = []

        async def deposit_during_the_start(self):
            if self.venue == USDM and not landed:  # the first read of the comparison, a ms after its time
                clock.manual.advance(gap_ms)
                landed.append(_deposit(sim))
            return await original(self)

        first = clock.now_ms()
        with monkeypatch.context() as m:
            m.setattr(BinanceClient, "balances", deposit_during_the_start)
            b = await start(raw, clock, drive)
            await stop(b, clock, drive)
        assert landed and _flows(b, first) == DEPOSIT and not _liquidations(b)

        await drive.run(20 * 60_000, 60_000)
        fee = _clearance_fee(liquidate(sim))
        c = await start(raw, clock, drive)
        try:
            assert _liquidations(c) == [-fee]
            assert _flows(c, first) == DEPOSIT, "the deposit booked twice"
            assert engine_wallet(c, USDM) == venue_wallet(sim, "binance-usdm")
        finally:
            await stop(c, clock, drive)


async def test_the_income_history_failing_at_start_leaves_the_comparison_for_the_next_start(tmp_path, monkeypatch):
    """The transfer history answers 503 on every attempt: the start goes on (a venue error never crashes it),
    books neither the deposit nor the liquidation from a difference it cannot tell apart, and does not mark the
    window compared — the next start, with the history back, books each once."""
    async with long_perp_then_down(tmp_path, monkeypatch) as (sim, drive, raw, a):
        clock = drive.clock
        await drive.run(20 * 60_000, 60_000)
        _deposit(sim)
        fee = _clearance_fee(liquidate(sim))
        original = BinanceClient.transfers_since

        async def history_down(self, since_ms):
            if self.venue == USDM:
                sim.inject("http_5xx", venue="binance-usdm", count=self.rest.max_attempts)
                clock.free_running = True  # the client's back-off waits pass on the replay clock
            try:
                return await original(self, since_ms)
            finally:
                clock.free_running = False

        compared = a.store.get_state(f"accounts_compared:{USDM}")
        restarted = clock.now_ms()
        with monkeypatch.context() as m:
            m.setattr(BinanceClient, "transfers_since", history_down)
            b = await start(raw, clock, drive)
            try:
                (failed,) = b.store.events(kind="account_read_failed")
                assert failed.message.startswith(f"{USDM}: VenueUnknown")
                assert _flows(b, restarted) == 0 and not _liquidations(b)
                assert b.store.get_state(f"accounts_compared:{USDM}") == compared
            finally:
                await stop(b, clock, drive)

        c = await start(raw, clock, drive)
        try:
            assert _flows(c, restarted) == DEPOSIT
            assert _liquidations(c) == [-fee]
            assert engine_wallet(c, USDM) == venue_wallet(sim, "binance-usdm")
        finally:
            await stop(c, clock, drive)


async def test_deposits_while_the_account_kept_moving_are_booked_once_by_the_next_start(tmp_path, monkeypatch):
    """A deposit lands before every read of a start's comparison: it gives up ("kept moving") and books nothing.
    The next start, after a liquidation, lists those deposits in its window (the failed start marked nothing
    compared) and books each once, the fee as the liquidation's."""
    async with long_perp_then_down(tmp_path, monkeypatch) as (sim, drive, raw, a):
        clock = drive.clock
        await drive.run(20 * 60_000, 60_000)
        original = BinanceClient.positions
        landed = []

        async def deposit_before_each_read(self):
            if self.venue == USDM and len(landed) < 4:  # the first read and the three after each fill fetch
                landed.append(_deposit(sim, D(10 + len(landed))))
            return await original(self)

        restarted = clock.now_ms()
        with monkeypatch.context() as m:
            m.setattr(BinanceClient, "positions", deposit_before_each_read)
            b = await start(raw, clock, drive)
            await stop(b, clock, drive)
        assert len(landed) == 4
        assert [e for e in b.store.events(kind="reconciliation") if "kept moving" in e.message]
        assert _flows(b, restarted) == 0 and not _liquidations(b)

        await drive.run(20 * 60_000, 60_000)
        fee = _clearance_fee(liquidate(sim))
        c = await start(raw, clock, drive)
        try:
            assert sorted(e["amount"] for e in c.store.ledger(kind="transfer") if e["ts_ms"] >= restarted) == [
                D(10), D(11), D(12), D(13)]
            assert _liquidations(c) == [-fee]
            assert engine_wallet(c, USDM) == venue_wallet(sim, "binance-usdm")
        finally:
            await stop(c, clock, drive)


async def test_a_withdrawal_and_another_assets_deposit_beside_an_unseen_liquidation_are_flows(tmp_path, monkeypatch):
    """Whichever sign, and in an asset that is not the perp's margin: each listed transfer is a flow, the rest of
    the margin asset's difference the liquidation's (its close-out trade is never seen)."""
    async with long_perp_then_down(tmp_path, monkeypatch) as (sim, drive, raw, a):
        clock = drive.clock
        await drive.run(20 * 60_000, 60_000)
        sim.inject("withdraw", account=ACCOUNT, venue="binance-usdm", asset="USDT", amount="100")
        sim.inject("deposit", account=ACCOUNT, venue="binance-usdm", asset="BNB", amount="2.5")
        await drive.run(60_000, 15_000)
        wallet = venue_wallet(sim, "binance-usdm")["USDT"]
        trade = liquidate(sim)
        lost = venue_wallet(sim, "binance-usdm")["USDT"] - wallet
        a.store.set_state("cursor:binance_usdm:BTCUSDT", trade.trade_id)  # the close-out trade is never seen

        restarted = clock.now_ms()
        b = await start(raw, clock, drive)
        try:
            moved = sorted((e["asset"], e["amount"], e["ref"].startswith("transfer:")) for e in
                           b.store.ledger(kind="transfer") if e["ts_ms"] >= restarted)
            assert moved == [("BNB", D("2.5"), True), ("USDT", D(-100), True)]
            # the position difference's fill at an assumed price and the liquidation's rest: what the venue took
            closed = [f for f in b.store.fills() if f.trade_id.startswith("reconcile:")]
            assert len(closed) == 1 and len(_liquidations(b)) == 1
            assert engine_wallet(b, USDM) == venue_wallet(sim, "binance-usdm")
            assert engine_wallet(b, USDM)["USDT"] - engine_wallet(a, USDM)["USDT"] == lost - 100
        finally:
            await stop(b, clock, drive)


async def test_a_transfer_history_of_many_pages_with_times_shared_across_a_page_boundary_is_booked_once_each(
        tmp_path, monkeypatch):
    """1100 deposits (450 in one ms, 600 in the next, 50 in the one after): the history is paged by time in
    pages of 1000, the second page starting again at the first page's last time; each deposit is booked once
    and the liquidation keeps only its fee."""
    async with long_perp_then_down(tmp_path, monkeypatch) as (sim, drive, raw, a):
        clock = drive.clock
        await drive.run(20 * 60_000, 60_000)
        for n in (450, 600, 50):
            for _ in range(n):
                _deposit(sim, D(1))
            clock.manual.advance(1)
        fee = _clearance_fee(liquidate(sim))
        restarted = clock.now_ms()
        b = await start(raw, clock, drive)
        try:
            refs = [e["ref"] for e in b.store.ledger(kind="transfer") if e["ts_ms"] >= restarted]
            assert len(refs) == len(set(refs)) == 1100 and _flows(b, restarted) == 1100
            assert _liquidations(b) == [-fee]
            assert engine_wallet(b, USDM) == venue_wallet(sim, "binance-usdm")
        finally:
            await stop(b, clock, drive)
