"""A user's strategy (the EMA cross example, loaded from its file by `strategies.custom`) runs unchanged in
paper and shadow mode against the simulator's real wire protocols, through the same risk layer and order
manager as the built-in ones."""

from __future__ import annotations

import pytest
from engine_support import ACCOUNT, data_present, settle, world

from ate.strategies.guard import Guarded

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(90)]

CUSTOM = {"strategies": {
    "directional": {"enabled": False}, "arbitrage": {"enabled": False}, "funding_carry": {"enabled": False},
    "custom": [{"class": "examples/strategies/ema_cross.py:EmaCross", "name": "my_ema",
                "params": {"timeframe": "1m", "fast": 2, "slow": 3, "notional_usd": 300}}]}}


@pytest.mark.parametrize("mode", ["paper", "shadow"])
async def test_custom_strategy_trades_through_the_engine(tmp_path, monkeypatch, mode):
    async with world(tmp_path, monkeypatch, mode=mode, engine_sections=CUSTOM) as (sim, engine, drive, _):
        await drive.run(25 * 60_000, 60_000)
        core = engine.core
        assert [s.name for s in core.strategies] == ["my_ema"] and isinstance(core.strategies[0], Guarded)
        strategy = core.strategies[0].inner
        # on a loaded machine the last closes may still be on their way when the replay stops
        assert await settle(lambda: engine.store.fills(strategy="my_ema"), rounds=3000), (
            core.strategies[0].inner.memory, engine.store.orders(), [(e.kind, e.message) for e in engine.store.events()][-10:])
        mine = engine.store.fills(strategy="my_ema")
        assert mine[0].side.value == "BUY", "a 2/3 EMA cross on 25 real minutes enters"
        # entries are its own size (a limit up to 10 bps through the ask); exits sell what it holds, at whatever
        # the price became (on a loaded machine a decision may meet a later book)
        assert all(f.qty * f.price <= 301 for f in mine if f.side.value == "BUY"), [(f.side, f.qty, f.price)
                                                                                   for f in mine]
        # The strategy's own holdings are exactly what the ledger booked for it, net of the BTC fees.
        booked = sum((f.qty if f.side.value == "BUY" else -f.qty) - (f.fee if f.fee_asset == "BTC" else 0)
                     for f in mine)
        assert strategy.holdings.get("binance:BTCUSDT", 0) == booked
        assert core.strategies[0].metrics()["errors"] == 0
        assert strategy.memory["bars"] >= 5  # closed 1m bars seen (fewer than 25 on a loaded machine)
        for venue, symbol in sim.core.markets:  # paper and shadow never send an order to the venue
            assert sim.core.all_orders(ACCOUNT, venue, symbol) == []
