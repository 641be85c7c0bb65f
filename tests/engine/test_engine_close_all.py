"""The operator's close-all on a live engine against the simulator: trading halts and the strategy's
positions are closed reduce-only on the venues, through the risk layer."""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_support import ACCOUNT, PERP_2025, SPOT_2025, data_present, settle, sim_config, world

from ate.model import OrderIntent, OrderType, Purpose, Side, TimeInForce, TradingState

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(60)]

START_2025 = 1748822400000  # 2025-06-02: spot and USD-M perp both replay real 1m bars
ROOMY = {"capital_stages": {"stages": [{"name": "big", "capital": 100000}]},
         "strategies": {"arbitrage": {"enabled": False}, "directional": {"enabled": False}}}


def leg(market: str, side: Side, price: Decimal, name: str) -> OrderIntent:
    venue, _, symbol = market.partition(":")
    return OrderIntent(venue, symbol, side, Decimal("0.002"), price, "funding_carry", Purpose.ENTRY,
                       OrderType.LIMIT, TimeInForce.IOC, meta={"leg": name})


async def open_carry_pair(core, drive):
    """The carry's pair opened by hand (spot bought, perp sold, 0.002 each, IOC through the book); the carry."""
    await drive.run(60_000, 15_000)
    spot, perp = core.books["binance:BTCUSDT"], core.books["binance_usdm:BTCUSDT"]
    assert core.orders.submit(leg("binance:BTCUSDT", Side.BUY, spot.ask * Decimal("1.002"), "spot"))
    assert core.orders.submit(leg("binance_usdm:BTCUSDT", Side.SELL, perp.bid * Decimal("0.998"), "perp"))
    carry = next(iter(core.by_name["funding_carry"].slots.values()))  # the one pair
    assert await settle(lambda: carry.spot_qty > 0 and carry.perp_qty < 0)
    return carry


async def test_close_all_halts_and_flattens_the_carry_pair(tmp_path, monkeypatch):
    cfg = sim_config(start_ms=START_2025, spot_data=SPOT_2025, perp_data=PERP_2025, backpack_data=PERP_2025)
    async with world(tmp_path, monkeypatch, mode="live", sim_cfg=cfg, engine_sections=ROOMY) as (
            sim, engine, drive, _):
        core = engine.core
        carry = await open_carry_pair(core, drive)
        assert sim.core.positions(ACCOUNT, "binance-usdm")["BTCUSDT"].qty == Decimal("-0.002")

        await engine._close_all_cmd("operator@test")

        assert core.trading_state is TradingState.HALTED
        for _ in range(30):  # the venue clients' waits (rate limits, backoff) run on the replay clock
            if not core.orders.open_orders() and not carry.perp_qty:
                break
            await drive.step(1_000)
        assert sim.core.positions(ACCOUNT, "binance-usdm")["BTCUSDT"].qty == 0
        closes = [o for o in engine.store.orders() if o.meta.get("purpose") == "close_all"]
        assert {(o.venue, o.side) for o in closes} == {("binance", Side.SELL), ("binance_usdm", Side.BUY)}
        assert all(o.reduce_only for o in closes)
