"""Canary mode against the simulator: real orders over the real protocols, under the canary caps; trading
stops at the daily loss limit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_support import (
    ACCOUNT,
    assert_venue_orders_known,
    data_present,
    settle,
    sim_config,
    sim_orders,
    world,
)

from ate.risk.capital import limits_from_config

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(60)]

SMALL = {"binance-spot": {"USDT": "1000", "BTC": "0.002"}, "binance-usdm": {"USDT": "1000"},
         "backpack": {"USDC": "1000", "BTC": "0.002"}}
EAGER_ARB = {"arbitrage": {"net_threshold_bps": 0, "fee_a_bps": 0, "fee_b_bps": 0, "slippage_buffer_bps": 0}}


async def test_canary_caps_hold_and_trading_stops_at_the_daily_loss_limit(tmp_path, monkeypatch):
    # The arbitrage is told the spread is free (no fees, no buffer) while the venues charge 10 bps a side:
    # every round trip loses money, so the tiny daily loss limit is reached within the session.
    canary = {"initial_capital": 1000, "max_position_size": 0.02, "daily_loss_limit": 0.25}
    sections = {"strategies": EAGER_ARB, "canary": canary}
    async with world(tmp_path, monkeypatch, mode="canary", sim_cfg=sim_config(balances=SMALL),
                     engine_sections=sections) as (sim, engine, drive, _):
        core = engine.core
        limits = limits_from_config(engine.cfg)
        assert (limits.source, limits.max_position_usd, limits.daily_loss_usd) == ("canary", Decimal(20),
                                                                                   Decimal("0.25"))
        breached_at = None
        for _ in range(240):  # at most one simulated hour
            await drive.step(15_000)
            await settle(lambda: not core.orders.open_orders(), rounds=300)
            if core.daily.loss >= limits.daily_loss_usd:
                breached_at = sim.clock.now_ms()
                break
        assert breached_at is not None, f"daily loss {core.daily.loss} never reached {limits.daily_loss_usd}"
        sent_before = len(sim_orders(sim))
        assert sent_before > 0, "the canary sent real orders before the breach"
        rejected_before = core.orders.stats.rejected_by_risk.get("daily_loss", 0)
        arb = core.by_name["arbitrage"]
        held_before = arb.skipped.get("headroom", 0)
        await drive.run(20 * 60_000, 15_000)
        await settle(lambda: not core.orders.open_orders(), rounds=300)

        # after the breach: no new entry reaches the venue for the rest of the day
        entries_after = [o for o in engine.store.orders() if o.created_ms > breached_at and
                         o.meta.get("purpose") == "entry"]
        assert entries_after == []
        # refused by risk, or never asked: the risk headroom a strategy sizes within is 0 at the limit
        assert (core.orders.stats.rejected_by_risk.get("daily_loss", 0) > rejected_before
                or arb.skipped.get("headroom", 0) > held_before)
        assert len(sim_orders(sim)) - sent_before <= sum(
            1 for o in engine.store.orders() if o.created_ms > breached_at)  # only exits/unwinds, if any

        # caps: no order above the canary caps, no position beyond the canary position cap
        for o in engine.store.orders():
            notional = o.qty * (o.price or core.portfolio.position(f"{o.venue}:{o.symbol}").mark_price)
            assert notional <= limits.max_order_usd
            if o.meta.get("purpose") == "entry":
                assert notional <= min(limits.max_single_trade_usd, limits.max_position_usd) * Decimal("1.001")
        for (venue, symbol) in sim.core.markets:
            position = Decimal(0)
            for f in sim.core.trades_for(ACCOUNT, venue, symbol):
                position += f.qty if f.side.value == "BUY" else -f.qty
                assert abs(position) * f.price <= limits.max_position_usd * Decimal("1.001"), (venue, symbol)
        # every order the venue holds is one the engine wrote ahead, sent once
        assert_venue_orders_known(sim, engine.store)
