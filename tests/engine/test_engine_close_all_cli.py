"""`ate close-all --yes` from another process's point of view while the engine runs: the command plans from
the venues, halts the engine through its kill file and store, closes the carry pair reduce-only, and the
engine, halted, opens nothing again."""

from __future__ import annotations

import pytest
from engine_support import ACCOUNT, PERP_2025, SPOT_2025, data_present, settle, sim_config, sim_orders, world
from test_engine_close_all import ROOMY, START_2025, open_carry_pair

from ate.commands import risk as commands
from ate.config import parse_config
from ate.model import TradingState
from ate.risk.events import CLOSE_ALL

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(90)]


async def test_cli_close_all_while_the_engine_runs(tmp_path, monkeypatch, capsys):
    cfg = sim_config(start_ms=START_2025, spot_data=SPOT_2025, perp_data=PERP_2025, backpack_data=PERP_2025)
    async with world(tmp_path, monkeypatch, mode="live", sim_cfg=cfg, engine_sections=ROOMY) as (
            sim, engine, drive, raw):
        core = engine.core
        await open_carry_pair(core, drive)
        await drive.run(60_000, 15_000)  # the engine records its positions in the store with its equity

        capsys.readouterr()
        ok = await commands.close_all(parse_config(raw), {"binance", "binance_usdm"}, True, clock=drive.clock)
        out = capsys.readouterr().out
        assert ok, out
        assert "binance_usdm: canceled 0, closed 1, errors 0, left open 0" in out
        assert "binance: canceled 0, closed 1, errors 0, left open 0" in out
        # the engine's own spot, from its store: 0.002 bought less the 0.000002 BTC fee, on the 0.00001 grid
        assert "close  binance BTCUSDT SELL 0.00199 MARKET" in out
        assert sim.core.positions(ACCOUNT, "binance-usdm")["BTCUSDT"].qty == 0

        # the engine's kill switch polls its file and the store every kill_switch.poll_ms of real time
        assert await settle(lambda: core.trading_state is TradingState.HALTED, rounds=10_000)
        sent = len(sim_orders(sim))
        await drive.run(60_000, 15_000)
        assert len(sim_orders(sim)) == sent, "a halted engine sent orders after close-all"
        ev = engine.store.events(kind=CLOSE_ALL)[0]
        assert ev.data["errors"] == [] and ev.data["left_open"] == [] and len(ev.data["closed"]) == 2
