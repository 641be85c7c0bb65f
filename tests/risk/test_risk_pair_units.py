"""Finding 2 over the simulator's wire: the legs of an arbitrage pair are one unit. A canary engine whose
position cap on binance:BTCUSDT is used up never sends the Backpack sell alone (it used to, then failed to
unwind it every 500 ms): the strategy sizes within the headroom of both legs, every pair that goes out has
equal legs, the position stays within its cap, and no unwind is ever refused."""

from __future__ import annotations

import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))  # the engine tests' simulator harness
from engine_support import (  # noqa: E402
    SIM_VENUE,
    assert_venue_orders_known,
    data_present,
    settle,
    sim_orders,
    venue_client_id,
    world,
)

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(120)]
D = Decimal
EAGER = {"arbitrage": {"net_threshold_bps": 0, "fee_a_bps": 0, "fee_b_bps": 0, "slippage_buffer_bps": 0,
                       "min_attempt_interval_ms": 0},
         "funding_carry": {"enabled": False}, "directional": {"enabled": False}}
CANARY = {"initial_capital": 1000, "max_position_size": 0.02, "daily_loss_limit": 30}  # configs/canary.json
CAP = D(20)  # USD per market


async def test_a_used_position_cap_on_one_leg_sends_neither_leg(tmp_path, monkeypatch):
    sections = {"strategies": EAGER, "canary": CANARY}
    async with world(tmp_path, monkeypatch, mode="canary", engine_sections=sections) as (sim, engine, drive, _):
        core = engine.core
        arb = core.by_name["arbitrage"]
        spot = core.portfolio.instruments["binance:BTCUSDT"]
        await drive.step(15_000)
        mark = core.books["binance:BTCUSDT"].bid
        core.risk.set_position(spot, CAP / mark)  # the 20 USD cap on binance:BTCUSDT is used
        worst = D(0)
        for _ in range(160):
            await drive.step(15_000)
            await settle(lambda: arb.attempt is None and not core.orders.open_orders(), rounds=300)
            worst = max(worst, core.risk.position(spot.key) * core.books[spot.key].bid)
        assert arb.skipped.get("headroom", 0) > 0, "pairs buying on the capped market were held back whole"
        assert arb.attempts > 0, "pairs that reduce it (selling on Binance) still trade under the canary caps"
        assert worst <= CAP * D("1.01"), f"the position reached {worst} USD"

        legs: dict[str, dict[str, object]] = defaultdict(dict)
        for o in engine.store.orders():
            legs[o.meta["attempt"]][o.meta["leg"]] = o
        at_venue = {(o.venue, o.client_order_id) for o in sim_orders(sim)}
        for attempt, by_leg in legs.items():
            assert {"buy", "sell"} <= set(by_leg), f"{attempt}: a lone leg went out: {sorted(by_leg)}"
            buy, sell = by_leg["buy"], by_leg["sell"]
            assert buy.qty == sell.qty, f"{attempt}: legs {buy.qty} vs {sell.qty}"
            for o in by_leg.values():  # entry legs and any unwind (an IOC the market left unfilled) were sent
                assert (SIM_VENUE[o.venue], venue_client_id(o)) in at_venue, f"{attempt}: {o.meta['leg']} not sent"
        assert arb.stuck is None
        assert set(core.orders.stats.rejected_by_risk) <= {"position_cap"}, core.orders.stats.rejected_by_risk
        assert_venue_orders_known(sim, engine.store)
