"""A spot buy whose fee the venue takes in the base coin leaves less BTC than the fill's quantity: the
engine's position (portfolio, risk, `Store.positions`) is what the venue holds, and `ate close-all` sells
exactly that — not rejected for an insufficient balance, and no residue at or above the venue's step left."""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_support import ACCOUNT, PERP_2025, SPOT_2025, data_present, settle, sim_config, world
from test_engine_ledger_findings import ioc

from ate.commands import risk as commands
from ate.config import parse_config
from ate.model import OrderStatus, Side

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(90)]

D = Decimal
START_2025 = 1748822400000
# no BTC before the engine buys: whatever close-all sells must come from the engine's own fills
BALANCES = {"binance-spot": {"USDT": "10000"}, "binance-usdm": {"USDT": "10000"},
            "backpack": {"USDC": "10000", "BTC": "0.1"}}
QUIET = {"arbitrage": {"enabled": False}, "funding_carry": {"enabled": False}, "directional": {"enabled": False}}
SECTIONS = {"strategies": QUIET, "capital_stages": {"stages": [{"name": "big", "capital": 100000}]}}


def venue_btc(sim) -> Decimal:
    return sim.core.balances(ACCOUNT, "binance-spot")["BTC"].free


async def test_close_all_sells_what_a_buy_with_its_fee_in_btc_left(tmp_path, monkeypatch, capsys):
    cfg = sim_config(start_ms=START_2025, spot_data=SPOT_2025, perp_data=PERP_2025, backpack_data=PERP_2025,
                     balances=BALANCES)
    async with world(tmp_path, monkeypatch, mode="live", sim_cfg=cfg, engine_sections=SECTIONS) as (
            sim, engine, drive, raw):
        await drive.run(60_000, 15_000)
        stored = engine.store.get_order
        for side, qty in ((Side.BUY, "0.003"), (Side.BUY, "0.002"), (Side.SELL, "0.001")):
            order = ioc(engine, "binance:BTCUSDT", side, qty)
            assert await settle(lambda o=order: stored(o.client_order_id).status is OrderStatus.FILLED, rounds=3000)
        fees = [(f.fee, f.fee_asset) for f in engine.store.fills()]
        assert [a for _, a in fees] == ["BTC", "BTC", "USDT"]
        held = venue_btc(sim)
        assert held == D("0.004") - fees[0][0] - fees[1][0] and held < D("0.004")
        market = "binance:BTCUSDT"
        assert engine.core.portfolio.position(market).qty == held
        assert engine.core.risk.position(market) == held
        assert engine.core.portfolio.balances["binance"]["BTC"] == held
        assert [(p.symbol, p.qty) for p in engine.store.positions() if p.venue == "binance"] == [("BTCUSDT", held)]

        capsys.readouterr()
        ok = await commands.close_all(parse_config(raw), {"binance"}, True, clock=drive.clock)
        out = capsys.readouterr().out
        assert ok, out
        step = engine.core.portfolio.instruments[market].step_size
        assert f"close  binance BTCUSDT SELL {((held // step) * step).normalize():f} MARKET reduce-only" in out, out
        assert "binance: canceled 0, closed 1, errors 0, left open 0" in out, out
        assert D(0) <= venue_btc(sim) < step  # sold down to the venue's grid: no sellable residue
