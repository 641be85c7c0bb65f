"""Directional on two markets over the simulator's wire: BTCUSDT and ETHUSDT spot replaying the real June 2025
1m files (ETH's from ../shared/data), each on its own signal engine. Both markets are traded, each slot's
state is saved with its orders, and a restart resumes both: each market's position, phase and trade as
they were, risk's positions rebuilt from the ledger, and trading goes on in both.

The modules are made quick (15m decisions, short windows, garch and bitvol off, any dominant vote enters) so
both markets trade within a few replayed hours; the signals are still the real ones on real prices.
"""

from __future__ import annotations

import pytest
from engine_support import (
    ACCOUNT,
    BN_KEY,
    BN_SECRET,
    ENV,
    PERP_2025,
    ROOT,
    SPOT_2025,
    stop_engine,
    world,
)
from test_engine_resume import start

from ate.config.sim import SimConfig
from ate.engine import Engine

ETH_2025 = ROOT.parent / "shared" / "data" / "binance_spot_ETHUSDT_1m_2025-06-01_2025-07-01.csv.gz"
START = 1748822400000  # 2025-06-02 00:00 UTC
STEP_MS = 15_000
BTC, ETH = "binance:BTCUSDT", "binance:ETHUSDT"
pytestmark = [pytest.mark.skipif(not (ETH_2025.exists() and (ROOT / SPOT_2025).exists()),
                                 reason="June 2025 BTC/ETH 1m files absent"),
              pytest.mark.timeout(300)]

QUICK_MODULES = {
    "decision_timeframe": "15m",
    "atr_supertrend": {"atr_period": 3, "st_period": 3, "sma_fast": 2, "sma_slow": 3, "strength_window": 3,
                       "regime_window": 5},
    "multi_timeframe": {"weights": {"15m": 1.0}, "min_available": 1, "st_period": 3},
    "lxvx": {"volume_window": 3, "vwap_window": 5},
    "garch": {"enabled": False},
    "bitvol": {"enabled": False},
    "combiner": {"min_confidence": 0.0, "dominance": 1.0},
}
SECTIONS = {
    "markets": {"primary": BTC, "backpack": [], "binance": [{"symbol": "BTCUSDT"}, {"symbol": "ETHUSDT"}]},
    "strategies": {"arbitrage": {"enabled": False}, "funding_carry": {"enabled": False},
                   "directional": {"markets": [BTC, ETH], "time_stop_hours": 2}},
    "modules": QUICK_MODULES,
    "canary": {"initial_capital": 10000, "max_position_size": 0.05, "daily_loss_limit": 500},
    "risk_limits": {"trusted_price_max_age_s": 20},
    "shutdown": {"cancel_orders": False},
}


def sim_cfg() -> SimConfig:
    return SimConfig.model_validate({
        "speed": 0, "start_ms": START, "seed": 7,
        "accounts": [{"id": ACCOUNT, "binance_api_key": BN_KEY, "binance_api_secret": BN_SECRET,
                      "backpack_public_key": ENV["E2E_BP_KEY"],
                      "balances": {"binance-spot": {"USDT": "10000"}}}],
        "markets": [{"venue": "binance-spot", "symbol": "BTCUSDT", "data": SPOT_2025},
                    {"venue": "binance-spot", "symbol": "ETHUSDT", "data": str(ETH_2025)},
                    {"venue": "binance-usdm", "symbol": "BTCUSDT", "data": PERP_2025}],  # served, not traded
    })


def slots(engine: Engine) -> dict[str, dict]:
    return engine.core.by_name["directional"].state()["markets"]


async def run_until(drive, done, hours: float) -> bool:
    for _ in range(int(hours * 3600_000 // STEP_MS)):
        if done():
            return True
        await drive.step(STEP_MS)
    return done()


def traded(engine: Engine, market: str) -> int:
    venue, _, symbol = market.partition(":")
    return sum(1 for f in engine.store.fills() if f.strategy == "directional" and f.symbol == symbol)


async def test_two_directional_markets_trade_and_a_restart_resumes_both(tmp_path, monkeypatch):
    async with world(tmp_path, monkeypatch, mode="canary", sim_cfg=sim_cfg(), engine_sections=SECTIONS,
                     start_engine=False) as (sim, _, drive, raw):
        clock = drive.clock
        a = await start(raw, clock, drive)
        assert set(a.core.engines) == {BTC, ETH}
        # both markets enter, and one of them holds a position when the engine stops
        assert await run_until(drive, lambda: traded(a, BTC) and traded(a, ETH), 12), slots(a)
        assert await run_until(drive, lambda: any(s["phase"] == "open" for s in slots(a).values()), 6), slots(a)
        decided = {m: sum(1 for e in a.store.events(kind="signal_decision") if e.data["market"] == m)
                   for m in (BTC, ETH)}
        assert decided[BTC] == decided[ETH] >= 4  # one decision per 15m bar on each market
        before = slots(a)
        positions = {m: a.core.portfolio.position(m).qty for m in (BTC, ETH)}
        kelly = {m: e.export_state()["kelly"] for m, e in a.core.engines.items()}
        await stop_engine(a, drive)

        b = await start(raw, clock, drive)
        assert slots(b) == before  # each market's phase, trade, stop and target, counters
        for m in (BTC, ETH):
            assert b.core.portfolio.position(m).qty == positions[m]
            assert b.core.risk.position(m) == positions[m]
            assert b.core.engines[m].export_state()["kelly"] == kelly[m]  # each market's own kelly history
        held = {m for m, s in before.items() if s["phase"] == "open"}
        # trading goes on: every position held at the restart is closed by its own market's exits (2 h time stop)
        assert await run_until(drive, lambda: all(slots(b)[m]["round_trips"] > before[m]["round_trips"]
                                                  for m in held), 6), slots(b)
        await stop_engine(b, drive)
