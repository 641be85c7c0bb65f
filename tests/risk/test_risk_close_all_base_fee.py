"""close-all sells what the engine holds, not what it bought: a spot buy's fee taken in the base coin leaves
less than the fill's quantity, and the rest of the venue's balance is pre-funded inventory close-all must keep
(found by bench/chaos.py: the plan sold the fee's worth of inventory)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from test_risk_e2e_sim import SimTime, place, shut, world

from ate.commands import risk as commands
from ate.model import Side
from ate.store import Store

pytestmark = [pytest.mark.timeout(120)]


async def test_dry_run_plans_the_bought_quantity_net_of_the_fee_taken_in_base(tmp_path, monkeypatch, capsys):
    sim_cm, sim, _cfg_path, cfg, clients, instruments = await world(tmp_path, monkeypatch)
    store = Store(cfg.store.url)
    try:
        client, inst = clients["backpack"], instruments["backpack"]["BTC_USDC"]
        await place(client, inst, Side.BUY, "0.003")
        fills, _ = await client.fills_since("BTC_USDC", None)
        assert fills and all(f.fee_asset == "BTC" and f.fee > 0 for f in fills), fills
        for f in fills:  # what the engine booked
            store.add_fill(f)
        store.close()
        held = inst.round_qty(Decimal("0.003") - sum(f.fee for f in fills))
        assert held < Decimal("0.003")

        capsys.readouterr()
        ok = await commands.close_all(cfg, {"backpack"}, False, clock=SimTime(sim))
        out = capsys.readouterr().out
        assert ok, out
        assert f"close  backpack BTC_USDC SELL {held} MARKET reduce-only" in out, out
    finally:
        store.close()
        await shut(sim_cm, clients)
