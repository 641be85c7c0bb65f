"""The demo (configs/demo.json, what `make run` starts): within 10 simulated hours arbitrage, funding carry
and directional have all placed orders, and the store shows funding accrued on the carry's perp leg.

The demo's own data, markets, strategy and module settings run here; only the plumbing differs: the
simulator's clock is driven by the test (15 s steps, every replayed book update) instead of running at
speed 60, and the engine reaches it over loopback as in the other engine tests."""

from __future__ import annotations

import asyncio
import json

from engine_support import ACCOUNT, BN_KEY, BN_SECRET, ENV, ROOT, world

from ate.config.sim import SimConfig
from ate.store import Store

HOUR = 3_600_000
STEP = 15_000  # one replayed path point of a 1m candle


def demo_sim_config(demo: dict) -> SimConfig:
    sim = demo["sim"]
    balances = sim["accounts"][0]["balances"]
    return SimConfig.model_validate({
        **sim, "speed": 0,
        "accounts": [{"id": ACCOUNT, "binance_api_key": BN_KEY, "binance_api_secret": BN_SECRET,
                      "backpack_public_key": ENV["E2E_BP_KEY"], "balances": balances}]})


async def test_demo_all_three_strategies_order_and_the_carry_perp_leg_accrues_funding(tmp_path, monkeypatch):
    demo = json.loads((ROOT / "configs" / "demo.json").read_text())
    sections = {k: demo[k] for k in ("strategies", "modules", "risk_limits") if k in demo}
    sections["markets"] = demo["markets"]
    async with world(tmp_path, monkeypatch, mode=demo["mode"], sim_cfg=demo_sim_config(demo),
                     engine_sections=sections, warm_ms=0) as (sim, engine, driver, raw):
        store = Store(raw["store"]["url"])
        start = sim.clock.now_ms()
        perp_funding: list[dict] = []
        strategies: set[str] = set()
        first_order: dict[str, int] = {}
        try:
            while sim.clock.now_ms() < start + 10 * HOUR:
                for _ in range(20):  # five simulated minutes between looks at the store
                    await driver.step(STEP)
                for o in store.orders():
                    if o.strategy not in first_order:
                        first_order[o.strategy] = sim.clock.now_ms() - start
                strategies = set(first_order)
                perp_funding = [e for e in store.ledger(kind="funding") if e["venue"] == "binance_usdm"]
                if strategies >= {"arbitrage", "funding_carry", "directional"} and perp_funding:
                    break
            carry_orders = [(o.created_ms - start, o.venue, o.side.value, str(o.qty), o.status.value)
                            for o in store.orders() if o.strategy == "funding_carry"]
        finally:
            store.close()
    assert strategies >= {"arbitrage", "funding_carry", "directional"}, first_order
    assert perp_funding and perp_funding[0]["strategy"] == "funding_carry", carry_orders


async def test_a_second_demo_run_resumes_the_replay_where_the_first_stopped(tmp_path, monkeypatch):
    from ate.config import parse_config
    from ate.engine import REPLAY_POSITION, Engine

    monkeypatch.chdir(ROOT)
    demo = json.loads((ROOT / "configs" / "demo.json").read_text())
    demo |= {"store": {"url": f"sqlite:///{tmp_path / 'demo.db'}"}, "monitor": {"enabled": False},
             "kill_switch": {"file": str(tmp_path / "EMERGENCY_STOP")}}
    cfg = parse_config(demo)
    first = Engine(cfg)
    await first.start()
    start = first.sim.replay_position_ms()
    assert start >= demo["sim"]["start_ms"]
    await asyncio.sleep(0.5)  # 30 simulated seconds at speed 60
    await first.stop()
    store = Store(demo["store"]["url"])
    try:
        stopped = store.get_state(REPLAY_POSITION)
    finally:
        store.close()
    assert stopped > start
    second = Engine(cfg)
    await second.start()
    try:
        assert second.sim.replay_position_ms() >= stopped  # not back at the config's start
    finally:
        await second.stop()
