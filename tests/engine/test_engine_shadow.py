"""Shadow mode against the simulator: real market data over the real wire protocols, zero order requests,
while the would-be trades of the real Binance-vs-Backpack(Bybit series) spread are recorded."""

from __future__ import annotations

import pytest
from engine_support import ACCOUNT, EAGER_ARB, RequestCounter, data_present, world

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(60)]



async def test_shadow_sends_no_orders_but_records_would_be_trades(tmp_path, monkeypatch):
    requests = RequestCounter(monkeypatch)
    async with world(tmp_path, monkeypatch, mode="shadow", engine_sections=EAGER_ARB) as (sim, engine, drive, _):
        await drive.run(10 * 60_000, 15_000)
        core = engine.core
        arb = core.by_name["arbitrage"].metrics()
        assert arb["opportunities_detected"] > 0 and arb["trades_executed"] > 0
        assert core.orders.stats.submitted > 0
        would_be = engine.store.orders(shadow=True)
        assert len(would_be) == core.orders.stats.submitted
        assert {o.strategy for o in would_be} == {"arbitrage"}
        assert engine.store.fills(shadow=True), "would-be fills at the touch are recorded"
        assert engine.store.orders(shadow=False) == []
        # ... and nothing reached the venue: no order request on any face, no order in the matching core
        assert requests.order_posts() == 0
        assert not [k for k in requests.seen if k[0] in ("POST", "DELETE", "PUT")
                    and "listenKey" not in k[1]]
        for venue, symbol in sim.core.markets:
            assert sim.core.all_orders(ACCOUNT, venue, symbol) == []
            assert sim.core.trades_for(ACCOUNT, venue, symbol) == []
        assert requests.seen[("GET", "/api/v3/account")] == 1  # balances were read (read-only keys suffice)
