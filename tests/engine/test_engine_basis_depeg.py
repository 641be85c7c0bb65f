"""The 2023 USDC de-peg replayed by the simulator over its wire protocols, into a whole engine (paper mode).

Binance.US BTC/USDT plays `binance:BTCUSDT`, Binance.US BTC/USDC plays `backpack:BTC_USDC`, and Kraken BTC/USDC
plays `binance:BTCUSDC`, the second market of the arbitrage's conversion cross. Invariants: the engine
subscribes to the conversion market because the strategy reads it (it is not among the configured markets);
when the basis leaves the band the veto is a stored CRITICAL event and the strategy's status says why; no
arbitrage order is created while the basis (rebuilt from the raw files) is outside the band. CI replays
the 90 minutes in which the basis first leaves the band (2023-03-10 21:00 →); ATE_DEPEG_FULL=1 replays 6 hours.
"""

from __future__ import annotations

import os

import pytest
from engine_support import ACCOUNT, BN_KEY, BN_SECRET, ENV, world

from ate.backtest.depeg import FILES, RealBasis
from ate.config.sim import SimConfig
from ate.model import Severity
from ate.monitor.status import stored_status

pytestmark = [pytest.mark.skipif(not all(p.exists() for p in FILES.values()), reason="de-peg slices absent"),
              pytest.mark.timeout(300)]
START = 1678482000000  # 2023-03-10 21:00 UTC
MINUTES = 360 if os.environ.get("ATE_DEPEG_FULL") == "1" else 90
USDT, USDC, KRAKEN = (f"data/{p.name}" for p in FILES.values())


def sim_config() -> SimConfig:
    common = {"min_size": 0.01, "size_fraction": 1.0}
    return SimConfig.model_validate({
        "speed": 0, "start_ms": START, "seed": 7,
        "accounts": [{"id": ACCOUNT, "binance_api_key": BN_KEY, "binance_api_secret": BN_SECRET,
                      "backpack_public_key": ENV["E2E_BP_KEY"],
                      "balances": {"binance-spot": {"USDT": "10000", "BTC": "0.2"},
                                   "backpack": {"USDC": "10000", "BTC": "0.2"}}}],
        "markets": [
            {"venue": "binance-spot", "symbol": "BTCUSDT", "data": USDT, **common},
            {"venue": "backpack", "symbol": "BTC_USDC", "data": USDC, **common},
            {"venue": "binance-spot", "symbol": "BTCUSDC", "data": KRAKEN, "base": "BTC", "quote": "USDC",
             "kind": "spot", "tick_size": "0.01", "step_size": "0.00001", "min_qty": "0.00001",
             "min_notional": "5", **common},
            # not traded: the engine's venue settings expect a USD-M face
            {"venue": "binance-usdm", "symbol": "BTCUSDT", "data": USDT},
        ],
    })


SECTIONS = {
    "markets": {"primary": "binance:BTCUSDT", "binance": [{"symbol": "BTCUSDT", "kind": "spot"}],
                "backpack": [{"symbol": "BTC_USDC", "kind": "spot"}]},
    "strategies": {"arbitrage": {"conversion_cross": ["binance:BTCUSDT", "binance:BTCUSDC"],
                                 "conversion_max_age_s": 300, "basis_resume_s": 1800, "max_notional": 1000},
                   "funding_carry": {"enabled": False}, "directional": {"enabled": False}},
    "risk_limits": {"max_position_size_usd": 1e8, "max_daily_loss_pct": 0.25, "max_single_trade_pct": 0.25,
                    "emergency_stop_loss_pct": 0.5, "max_order_pct_of_capital": 0.5, "capital_usd": 20000,
                    "max_price_deviation_pct": 0.5, "trusted_price_max_age_s": 600},
}


async def test_simulator_replay_of_the_depeg_vetoes_arbitrage_with_an_alert(tmp_path, monkeypatch):
    async with world(tmp_path, monkeypatch, mode="paper", sim_cfg=sim_config(), engine_sections=SECTIONS) as (
            sim, engine, drive, _):
        assert "binance:BTCUSDC" in engine.instruments  # subscribed for the strategy, not configured
        await drive.run(MINUTES * 60_000, 15_000)  # the replay moves 15 s at a time, as a live stream would
        vetoes = engine.store.events(kind="arbitrage.basis_veto", limit=100)
        assert vetoes and all(e.severity is Severity.CRITICAL for e in vetoes)
        assert any("outside ±30 bps" in e.message for e in vetoes)
        basis = engine.status()["strategies"]["arbitrage"]["basis"]
        assert basis["source"] == "cross" and basis["veto"] is not None
        stored = stored_status(engine.store)["arbitrage_basis"]  # `ate status`
        assert stored["vetoed"] and stored["reason"] == vetoes[0].data["reason"]
        assert engine.status()["strategies"]["arbitrage"]["skipped"].get("basis", 0) > 0  # edges seen, refused
        end = sim.clock.now_ms()
        real = RealBasis(end_ms=end)
        arb_orders = [o for o in engine.store.orders() if o.strategy == "arbitrage"]
        outside = [o for o in arb_orders if real.outside(o.created_ms - o.created_ms % 60_000, 30.0)]
        assert outside == []


async def test_the_same_replay_without_the_band_trades_while_the_basis_is_outside_it(tmp_path, monkeypatch):
    """What the guard prevents, over the same wire replay (so the invariant above can fail)."""
    sections = {**SECTIONS, "strategies": {**SECTIONS["strategies"],
                                           "arbitrage": {**SECTIONS["strategies"]["arbitrage"], "basis_band_bps": None}}}
    async with world(tmp_path, monkeypatch, mode="paper", sim_cfg=sim_config(), engine_sections=sections) as (
            sim, engine, drive, _):
        await drive.run(MINUTES * 60_000, 15_000)
        real = RealBasis(end_ms=sim.clock.now_ms())
        arb_orders = [o for o in engine.store.orders() if o.strategy == "arbitrage"]
        assert any(real.outside(o.created_ms - o.created_ms % 60_000, 30.0) for o in arb_orders)


async def test_a_conversion_market_the_venue_does_not_list_is_an_alert_and_a_veto(tmp_path, monkeypatch):
    """The default basis (binance:USDCUSDT) on a simulator that does not list it: no crash, no silent 1."""
    eager = {"strategies": {"arbitrage": {"net_threshold_bps": 0, "fee_a_bps": 0, "fee_b_bps": 0,
                                          "slippage_buffer_bps": 0}}}
    async with world(tmp_path, monkeypatch, mode="paper", engine_sections=eager) as (_, engine, drive, _cfg):
        missing = engine.store.events(kind="subscription_missing")
        assert [e.severity for e in missing] == [Severity.CRITICAL] and "binance:USDCUSDT" in missing[0].message
        await drive.run(5 * 60_000, 15_000)
        arb = engine.status()["strategies"]["arbitrage"]
        assert arb["basis"]["veto"] == "no usable conversion market" and arb["attempts"] == 0
        (config,) = engine.store.events(kind="arbitrage.basis_config")
        assert config.severity is Severity.CRITICAL and "binance:USDCUSDT is not listed by its venue" in config.message
        assert engine.store.events(kind="arbitrage.basis_veto")
