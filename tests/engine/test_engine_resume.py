"""A restart is a resume, over the simulator's wire: the engine loads its ledger, then books only the
difference with the venues.

Finding 3: a fill made while the engine was down is booked once (venue balances are never loaded on top of
the ledger). Finding 5: risk's spot and perp positions are rebuilt from the ledger. Finding 8: a withdrawal
made while down is an external transfer with an alert, booked once, and moves the daily-loss baseline
instead of counting as a loss."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from engine_support import ACCOUNT, ReplayClock, data_present, settle, sim_config, stop_engine, world

from ate.config import parse_config
from ate.engine import Engine
from ate.model import MarketKind, OrderIntent, OrderStatus, OrderType, Side, TimeInForce
from ate.model.intent import Purpose
from ate.monitor.status import HEARTBEAT_STALE_MS, engine_running
from ate.store import Store

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(90)]

D = Decimal
QUIET = {"arbitrage": {"enabled": False}, "funding_carry": {"enabled": False}, "directional": {"enabled": False}}
SECTIONS = {"strategies": QUIET, "canary": {"initial_capital": 10000, "max_position_size": 0.05,
                                            "daily_loss_limit": 300},
            "shutdown": {"cancel_orders": False}}


async def start(raw: dict, clock: ReplayClock, drive) -> Engine:
    clock.free_running = False
    engine = Engine(parse_config(raw), clock=clock)
    await engine.start()
    drive.engine = engine
    await drive.quiet()
    await settle(rounds=50)
    return engine


async def stop(engine: Engine, clock: ReplayClock, drive) -> None:
    await stop_engine(engine, drive)


def venue_wallet(sim, venue: str) -> dict[str, Decimal]:
    return {a: b.total for a, b in sim.core.balances(ACCOUNT, venue).items() if b.total}


def engine_wallet(engine: Engine, venue: str) -> dict[str, Decimal]:
    return {a: x for a, x in engine.core.portfolio.balances[venue].items() if x}


async def test_restart_books_fills_and_transfers_made_while_down_once(tmp_path, monkeypatch):
    async with world(tmp_path, monkeypatch, mode="canary", sim_cfg=sim_config(), engine_sections=SECTIONS,
                     start_engine=False) as (sim, _, drive, raw):
        clock = drive.clock
        a = await start(raw, clock, drive)
        await drive.run(120_000, 15_000)
        assert engine_wallet(a, "binance") == venue_wallet(sim, "binance-spot")  # the opening balance
        assert len(a.store.events(kind="opening_balance")) >= 2
        bid = a.core.books["binance:BTCUSDT"].bid
        with a.core.unit():  # a resting buy 5 bps under the touch: the market will come down to it
            order = a.core.orders.submit(OrderIntent("binance", "BTCUSDT", Side.BUY, D("0.004"),
                                                     (bid * D("0.9995")).quantize(D("0.01")), "resume",
                                                     Purpose.ENTRY, tif=TimeInForce.GTC))
        assert order is not None
        await drive.step(1_000)
        await settle(lambda: a.store.get_order(order.client_order_id).status is OrderStatus.SUBMITTED)
        await stop(a, clock, drive)

        # while the engine is down: the order fills, and the operator withdraws 100 USDT
        for _ in range(24 * 60):
            sim_order = next(o for o in sim.core.all_orders(ACCOUNT, "binance-spot", "BTCUSDT")
                             if o.client_order_id == order.client_order_id)
            if sim_order.status.value == "FILLED":
                break
            await drive.step(60_000)
        assert sim_order.status.value == "FILLED"
        sim.inject("withdraw", account=ACCOUNT, venue="binance-spot", asset="USDT", amount="100")

        b = await start(raw, clock, drive)
        venue_fills = sim.core.trades_for(ACCOUNT, "binance-spot", "BTCUSDT")
        stored = [f for f in b.store.fills() if f.client_order_id == order.client_order_id]
        assert sorted(f.trade_id for f in stored) == sorted(f.trade_id for f in venue_fills)
        assert engine_wallet(b, "binance") == venue_wallet(sim, "binance-spot")  # finding 3: nothing twice
        held = D("0.004") - sum(f.fee for f in stored if f.fee_asset == "BTC")  # the venue's fee, taken in BTC
        assert b.core.portfolio.position("binance:BTCUSDT").qty == held
        assert b.core.risk.position("binance:BTCUSDT") == held  # finding 5
        transfers = [e for e in b.store.ledger(kind="transfer") if e["venue"] == "binance" and e["asset"] == "USDT"]
        assert [e["amount"] for e in transfers][1:] == [D("-100")]  # after the opening balance: the withdrawal
        (alert,) = b.store.events(kind="external_transfer")
        assert alert.severity.value == "critical" and D(alert.data["amount"]) == D("-100")
        await drive.run(5_000, 1_000)

        def last_flow():
            return ([f for _, _, f in b.store.equity_series() if f] or [None])[-1]

        # finding 8: the withdrawal is a flow in the daily-loss baseline and the equity series, not a loss (the
        # timer that writes the snapshot may run after the books caught up on a loaded machine)
        assert await settle(lambda: last_flow() == D("-100"), rounds=3000), last_flow()
        await stop(b, clock, drive)

        assert not engine_running(b.store)
        c = await start(raw, clock, drive)  # nothing new happened: nothing new is booked
        # `ate status` knows it runs (a heartbeat on wall time), and that a silent process is dead
        assert engine_running(c.store)
        assert not engine_running(c.store, int(time.time() * 1000) + HEARTBEAT_STALE_MS)
        assert len(c.store.events(kind="external_transfer")) == 1
        assert engine_wallet(c, "binance") == venue_wallet(sim, "binance-spot")
        assert len(c.store.ledger(kind="transfer")) == len(b.store.ledger(kind="transfer"))
        await stop(c, clock, drive)


@pytest.mark.parametrize("trades", [1, 8])
async def test_a_fill_during_the_start_up_balance_read_is_booked_once(tmp_path, monkeypatch, trades):
    """The account moves between the start-up fill fetch and the balance read (an operator's manual trade):
    it is one external fill, never also a transfer, and the wallet equals the venue's. An account that keeps
    moving on every read books no difference at all (a warning says it waits for the next start)."""
    from ate.venues.binance.client import BinanceClient

    async with world(tmp_path, monkeypatch, mode="canary", sim_cfg=sim_config(), engine_sections=SECTIONS,
                     start_engine=False) as (sim, _, drive, raw):
        clock = drive.clock
        a = await start(raw, clock, drive)
        await drive.run(60_000, 15_000)
        await stop(a, clock, drive)

        real_balances, traded = BinanceClient.balances, []

        async def balances_after_a_manual_trade(self):
            if self.kind is MarketKind.SPOT and len(traded) < trades:  # lands after the start-up fill fetch
                traded.append(sim.core.place_order(ACCOUNT, "binance-spot", "BTCUSDT", Side.BUY, OrderType.MARKET,
                                                   D("0.003"), client_order_id=f"manual-during-start-{len(traded)}"))
            return await real_balances(self)

        monkeypatch.setattr(BinanceClient, "balances", balances_after_a_manual_trade)
        b = await start(raw, clock, drive)
        await drive.run(5_000, 1_000)
        assert all(fills for _, fills in traded), "the manual trades filled at the venue"
        assert not b.store.events(kind="external_transfer")  # never a withdrawal of what a fill spent
        opening = [e for e in a.store.ledger(kind="transfer") if e["venue"] == "binance"]
        assert [e for e in b.store.ledger(kind="transfer") if e["venue"] == "binance"] == opening
        moving = [e for e in b.store.events(kind="reconciliation") if "kept moving" in e.message]
        if trades == 1:
            assert engine_wallet(b, "binance") == venue_wallet(sim, "binance-spot")  # each fill once
            external = [f for f in b.store.fills() if f.client_order_id.startswith("manual-during-start")]
            assert sum(f.qty for f in external) == D("0.003") and not moving
        else:
            assert [e.data["venue"] for e in moving] == ["binance"]
        await stop(b, clock, drive)


async def test_a_second_demo_run_continues_the_replay_and_the_shadow_book(tmp_path, monkeypatch):
    """Two `make run`s in a row: the second starts the in-process simulator where the first one stopped, with
    the same hypothetical book and strategy phases."""
    import asyncio
    import json

    from engine_support import ROOT

    from ate.engine import REPLAY_POSITION

    monkeypatch.chdir(ROOT)
    cfg = json.loads((ROOT / "configs" / "demo.json").read_text())
    cfg.update(store={"url": f"sqlite:///{tmp_path}/demo.db"}, monitor={"enabled": False},
               kill_switch={"file": str(tmp_path / "EMERGENCY_STOP")})
    first = Engine(parse_config(cfg))
    await first.start()
    began = first.clock.now_ms()
    await asyncio.sleep(1.5)  # the demo replays at 60×: a minute and a half of market passes
    book = {k: p.qty for k, p in first.core.portfolio.positions.items() if p.qty}
    phases = {n: _phases(s.state()) for n, s in first.core.by_name.items()}
    await first.stop()
    store = Store(cfg["store"]["url"])
    stopped = store.get_state(REPLAY_POSITION)
    store.close()
    assert stopped > began
    second = Engine(parse_config(cfg))
    await second.start()
    try:
        assert second.clock.now_ms() >= stopped  # replay time moves forward across runs
        assert {k: p.qty for k, p in second.core.portfolio.positions.items() if p.qty} == book
        assert {n: _phases(s.state()) for n, s in second.core.by_name.items()} == phases
        assert engine_running(second.store)
    finally:
        await second.stop()


def _phases(state: dict) -> object:
    """A strategy's phase, or each market's for one given a list of markets."""
    if "markets" in state:
        return {m: s.get("phase") for m, s in state["markets"].items()}
    return state.get("phase")
