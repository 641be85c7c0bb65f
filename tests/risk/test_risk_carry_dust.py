"""Finding 10 over the simulator's wire: the venue takes the spot buy's fee in BTC. The carry buys q/(1-fee)
so the pair nets zero delta, its close leaves less than one spot step of BTC, that residue is tracked as
dust, the pair finishes closing, and the carry trades again (it used to stay "closing" for ever)."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))  # the engine tests' simulator harness
from engine_support import PERP_2025, SPOT_2025, data_present, settle, sim_config, world  # noqa: E402

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(120)]
D = Decimal
JUNE_2025 = 1748854800000  # 2025-06-02 09:00 UTC, after a positive settlement; the perp streams every minute
# Enter on any positive funding and leave at once (exit threshold far above any rate): open, close, again.
QUICK_CARRY = {"notional": 1370, "min_rate_bps_8h": 0, "persistence": 1, "holding_days": 1000,
               "fee_perp_bps": 0, "slippage_bps": 0, "exit_threshold_bps_8h": 10_000, "exit_periods": 1,
               "entry_max_from_touch_bps": 20}


async def test_a_carry_pair_closes_despite_fee_dust_and_trades_again(tmp_path, monkeypatch):
    sections = {"strategies": {"arbitrage": {"enabled": False}, "directional": {"enabled": False},
                               "funding_carry": QUICK_CARRY},
                "canary": {"initial_capital": 40000, "max_position_size": 0.1, "daily_loss_limit": 100},
                "risk_limits": {"trusted_price_max_age_s": 60}}  # the replay's books move once a minute
    june = sim_config(start_ms=JUNE_2025, spot_data=SPOT_2025, perp_data=PERP_2025, backpack_data=SPOT_2025)
    async with world(tmp_path, monkeypatch, mode="canary", sim_cfg=june, engine_sections=sections) as (
            sim, engine, drive, _):
        core = engine.core
        carry = next(iter(core.by_name["funding_carry"].slots.values()))  # the one pair
        spot = core.portfolio.instruments["binance:BTCUSDT"]
        for _ in range(120):
            await drive.step(15_000)
            await settle(lambda: not core.orders.open_orders(), rounds=300)
            if carry.pairs_closed >= 1 and carry.phase in ("opening", "open"):
                break
        assert carry.pairs_closed >= 1, carry.metrics()
        assert carry.phase in ("opening", "open"), "after the close the carry opened a new pair"

        first = [o for o in engine.store.orders() if o.strategy == "funding_carry"][:4]
        legs = {(o.meta["leg"], o.meta["purpose"]): o for o in first}
        spot_buy, perp_sell = legs[("spot", "entry")], legs[("perp", "entry")]
        fills = [f for f in engine.store.fills() if f.client_order_id == spot_buy.client_order_id]
        assert fills and all(f.fee_asset == "BTC" for f in fills), "the venue took the spot fee in BTC"
        net_spot = sum((f.qty - f.fee for f in fills), D(0))
        assert perp_sell.filled_qty > 0 and spot_buy.filled_qty > perp_sell.filled_qty
        assert 0 <= net_spot - perp_sell.filled_qty < spot.step_size, "zero net delta within one spot step"

        assert 0 < carry.dust < spot.min_qty + spot.step_size, carry.dust
        kinds = [e.kind for e in engine.store.events()]
        assert "funding_carry.dust" in kinds and "funding_carry.closed" in kinds
