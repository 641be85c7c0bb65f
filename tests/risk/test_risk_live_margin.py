"""Finding 7: the carry's margin and liquidation-distance guard runs live. Over the simulator's real wire:
leverage and margin type are set and checked (Binance -4046 "no need to change" is success, -4048 with a
position is a refusal), the venue's liquidation price is the one its matching core liquidates at, and a
canary engine fills ``core.margins`` at start so the carry closes a pair whose liquidation is too near."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))  # the engine tests' simulator harness
from engine_support import (  # noqa: E402
    ACCOUNT,
    BALANCES,
    PERP_2025,
    SPOT_2025,
    data_present,
    settle,
    sim_config,
    sim_orders,
    world,
)

from ate.config import parse_config  # noqa: E402
from ate.config.sim import SimConfig  # noqa: E402
from ate.engine import Engine  # noqa: E402
from ate.model import OrderType, Side  # noqa: E402
from ate.store import Store  # noqa: E402
from ate.venues.errors import VenueRejected  # noqa: E402
from ate.venues.factory import build_clients  # noqa: E402

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(120)]
D = Decimal
SHORT = D("0.01")
JUNE_2025 = 1748822400000  # 2025-06-02 00:00 UTC
THIN = {**BALANCES, "binance-usdm": {"USDT": "150"}}  # 0.01 BTC short on 150 USDT: liquidation ~17 % away


async def clients_for(raw: dict, drive) -> dict:
    cfg = parse_config(raw)
    clients = {k: c for k, c in build_clients(cfg.venues, clock=drive.clock).items() if k != "deribit"}
    for c in clients.values():
        await c.start()
    return clients


def with_backpack_perp():
    """The engine tests' venues plus a Backpack perp (the Binance USD-M series stands in for it)."""
    cfg = sim_config(balances=THIN).model_dump()
    perp = next(m for m in cfg["markets"] if m["venue"] == "binance-usdm")
    cfg["markets"].append({**perp, "venue": "backpack", "symbol": "BTC_USDC_PERP"})
    return SimConfig.model_validate(cfg)


async def test_leverage_margin_type_and_liquidation_price_over_the_wire(tmp_path, monkeypatch):
    async with world(tmp_path, monkeypatch, start_engine=False, sim_cfg=with_backpack_perp()) as (sim, _, drive, raw):
        clients = await clients_for(raw, drive)
        usdm, backpack = clients["binance_usdm"], clients["backpack"]
        try:
            await usdm.set_margin_type("BTCUSDT", "CROSSED")  # already cross: -4046, which is success
            await usdm.set_margin_type("BTCUSDT", "ISOLATED")
            await usdm.set_margin_type("BTCUSDT", "ISOLATED")
            assert sim.core.account(ACCOUNT).margin_type[("binance-usdm", "BTCUSDT")] == "ISOLATED"
            await usdm.set_margin_type("BTCUSDT", "CROSSED")
            assert await usdm.set_leverage("BTCUSDT", 20) == 20
            assert sim.core.leverage(ACCOUNT, "binance-usdm", "BTCUSDT") == 20
            with pytest.raises(VenueRejected):
                await clients["binance"].set_leverage("BTCUSDT", 2)  # spot has no leverage

            report = await usdm.margin("BTCUSDT")
            assert report.liquidation_price is None and report.position == 0 and report.equity == D("150")

            sim.core.place_order(ACCOUNT, "binance-usdm", "BTCUSDT", Side.SELL, OrderType.MARKET, SHORT)
            report = await usdm.margin("BTCUSDT")
            m = sim.core.market("binance-usdm", "BTCUSDT")
            mark = m.mark or m.mid_price()
            assert report.position == -SHORT
            assert report.maintenance == SHORT * mark * m.maint_margin_rate
            liq = report.liquidation_price
            assert liq is not None and mark * D("1.1") < liq < mark * D("1.3")
            with pytest.raises(VenueRejected) as refused:
                await usdm.set_margin_type("BTCUSDT", "ISOLATED")
            assert refused.value.code == -4048

            # the reported price is where the venue liquidates: a tick below holds, the price itself does not
            now = sim.clock.now_ms()
            sim.core.update_mark(m, now, mark=liq - m.instrument.tick_size)
            assert sim.core.positions(ACCOUNT, "binance-usdm")["BTCUSDT"].qty == -SHORT
            sim.core.update_mark(m, now, mark=liq + m.instrument.tick_size)
            assert sim.core.positions(ACCOUNT, "binance-usdm")["BTCUSDT"].qty == 0

            # Backpack: leverage per account, cross only
            assert await backpack.set_leverage("BTC_USDC_PERP", 5) == 5
            assert sim.core.leverage(ACCOUNT, "backpack", "BTC_USDC_PERP") == 5
            sim.core.place_order(ACCOUNT, "backpack", "BTC_USDC_PERP", Side.SELL, OrderType.MARKET, SHORT)
            bp = await backpack.margin("BTC_USDC_PERP")
            assert bp.position == -SHORT
            assert bp.liquidation_price == sim.core.liquidation_price(ACCOUNT, "backpack", "BTC_USDC_PERP")
            assert bp.liquidation_price is not None and bp.maintenance > 0
            await backpack.set_margin_type("BTC_USDC_PERP", "CROSSED")
            with pytest.raises(VenueRejected):
                await backpack.set_margin_type("BTC_USDC_PERP", "ISOLATED")
        finally:
            for c in clients.values():
                await c.close()


CARRY_OPEN = {"phase": "open", "spot_qty": str(SHORT), "perp_qty": str(-SHORT), "cash": "0", "fees": "0",
              "entry_notional": "800", "pair_funding": "0", "t_open": None, "changes": [], "pending": [],
              "funding_captured": "0", "payments": 0, "margin_breach_ms": None, "exit_reason": None,
              "wins": 0, "losses": 0, "pairs_closed": 0}


async def test_canary_engine_reads_margin_live_and_the_carry_guard_closes_the_pair(tmp_path, monkeypatch):
    sections = {"strategies": {"arbitrage": {"enabled": False}, "directional": {"enabled": False},
                               "funding_carry": {"leverage": 20}},
                "canary": {"initial_capital": 10000, "max_position_size": 0.5, "daily_loss_limit": 100},
                "risk_limits": {"trusted_price_max_age_s": 60}}  # the replay's books move once a minute
    # June 2025: the perp streams every minute (its book gives the carry its mark)
    june = sim_config(balances=THIN, start_ms=JUNE_2025, spot_data=SPOT_2025, perp_data=PERP_2025,
                      backpack_data=SPOT_2025)
    async with world(tmp_path, monkeypatch, mode="canary", start_engine=False, sim_cfg=june,
                     engine_sections=sections) as (sim, _, drive, raw):
        sim.core.place_order(ACCOUNT, "binance-usdm", "BTCUSDT", Side.SELL, OrderType.MARKET, SHORT)
        store = Store(raw["store"]["url"])
        store.set_state("strategy.funding_carry", CARRY_OPEN, sim.clock.now_ms())
        store.close()
        engine = Engine(parse_config(raw), clock=drive.clock)
        await engine.start()
        try:
            core = engine.core
            assert sim.core.leverage(ACCOUNT, "binance-usdm", "BTCUSDT") == 20
            events = [e.kind for e in engine.store.events()]
            assert "leverage_set" in events and "leverage_unverified" not in events
            margin = core.margins["binance_usdm:BTCUSDT"]
            assert margin.liquidation_price == sim.core.liquidation_price(ACCOUNT, "binance-usdm", "BTCUSDT")
            carry = next(iter(core.by_name["funding_carry"].slots.values()))  # the one pair
            assert carry.phase == "open"
            for _ in range(40):
                await drive.step(15_000)
                await settle(lambda: carry.exit_reason is not None, rounds=200)
                if carry.exit_reason is not None:
                    break
            assert carry.exit_reason is not None and "liquidation" in carry.exit_reason, carry.metrics()
            await settle(lambda: any(o.reduce_only and o.side is Side.BUY for o in sim_orders(sim)), rounds=500)
            closes = [o for o in sim_orders(sim) if o.reduce_only and o.side is Side.BUY and o.venue == "binance-usdm"]
            assert closes and closes[0].qty == SHORT, "the perp leg's reduce-only close reached the venue"
            assert any(o.venue == "binance-spot" and o.side is Side.SELL for o in sim_orders(sim)), "and the spot leg"
        finally:
            drive.clock.free_running = True
            drive.clock.wake()
            for *_, fut in drive.clock._sleepers:
                if not fut.done():
                    fut.set_result(None)
            await engine.stop()



async def test_a_liquidation_the_engine_missed_is_caught_by_the_account_poll(tmp_path, monkeypatch):
    """Finding 7: a liquidation arrived as an unknown order and was ignored. Within two account polls the
    engine has either booked it or raised a drift and handed the venue to reconciliation."""
    sections = {"strategies": {"arbitrage": {"enabled": False}, "directional": {"enabled": False},
                               "funding_carry": {"leverage": 20}},
                "risk_limits": {"account_poll_s": 10}}
    async with world(tmp_path, monkeypatch, mode="canary", start_engine=False, sim_cfg=sim_config(balances=THIN),
                     engine_sections=sections) as (sim, _, drive, raw):
        sim.core.place_order(ACCOUNT, "binance-usdm", "BTCUSDT", Side.SELL, OrderType.MARKET, SHORT)
        engine = Engine(parse_config(raw), clock=drive.clock)
        reconciled: list[str] = []
        original = engine.reconcile_soon
        monkeypatch.setattr(engine, "reconcile_soon", lambda venue: (reconciled.append(venue), original(venue)))
        await engine.start()
        try:
            held = engine.core.portfolio.position("binance_usdm:BTCUSDT")
            assert held.qty == -SHORT
            sim.inject("liquidate", account=ACCOUNT, venue="binance-usdm", symbol="BTCUSDT")
            assert sim.core.positions(ACCOUNT, "binance-usdm")["BTCUSDT"].qty == 0
            for _ in range(6):  # two polls and a little
                await drive.step(5_000)
                await settle(rounds=50)
            drifts = [e for e in engine.store.events() if e.kind == "account_drift"]
            assert held.qty == 0 or (drifts and "binance_usdm" in reconciled), (held.qty, reconciled)
            if drifts:
                assert drifts[0].data["diffs"]["binance_usdm:BTCUSDT"] == str(SHORT)
        finally:
            drive.clock.free_running = True
            drive.clock.wake()
            for *_, fut in drive.clock._sleepers:
                if not fut.done():
                    fut.set_result(None)
            await engine.stop()
