"""Crash safety: a real engine process is killed with SIGKILL at random points of a canary session with
orders in flight against the simulator (in this process), and restarted each time. Afterwards: no order
was sent twice, every order on the venues is known to the store after reconciliation, and the store's
fills and ledger match the venues' own records.

The simulator and the engine share a replay clock derived from the wall clock (SPEED× real time): this
test is real time by nature (random kill points). ATE_CRASH_KILLS=20 runs the issue's full 20 kill points.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from engine_support import (
    ACCOUNT,
    ENV,
    ROOT,
    SIM_VENUE,
    assert_venue_orders_known,
    data_present,
    engine_config_dict,
    sim_config,
    sim_orders,
    venue_client_id,
)

from ate.sim.clock import ScaledClock
from ate.sim.runner import run_simulator
from ate.store import Store

KILLS = int(os.environ.get("ATE_CRASH_KILLS", "3"))
SPEED = 10.0
DRIVER = Path(__file__).with_name("engine_driver.py")
pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(60 + 12 * KILLS)]

EAGER_ARB = {"arbitrage": {"net_threshold_bps": 0, "fee_a_bps": 0, "fee_b_bps": 0, "slippage_buffer_bps": 0,
                           "conversion_rate": 1.0, "min_attempt_interval_ms": 0, "max_notional": 50}}


async def start_engine(cfg_path: Path, start_ms: int, t0: float) -> asyncio.subprocess.Process:
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT / "src")}
    log = cfg_path.with_name("engine.log")
    with log.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(DRIVER), str(cfg_path), str(start_ms), repr(t0), str(SPEED), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=err)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line.strip() == b"ready", log.read_text()[-3000:]
    return proc


async def test_kill_9_at_random_points_never_duplicates_or_loses_an_order(tmp_path):
    rng = random.Random(20260317)
    t0 = time.time()
    start_ms = sim_config().start_ms
    clock = ScaledClock(start_ms, SPEED, wall=time.time)
    clock._t0 = t0  # both processes derive replay time from the same wall instant
    cfg = sim_config(balances={"binance-spot": {"USDT": "5000", "BTC": "0.05"}, "binance-usdm": {"USDT": "1000"},
                               "backpack": {"USDC": "5000", "BTC": "0.05"}})
    async with run_simulator(cfg, clock=clock, base_dir=ROOT) as sim:
        raw = engine_config_dict(sim, tmp_path / "ate.db", mode="canary", strategies=EAGER_ARB,
                                 canary={"initial_capital": 10000, "max_position_size": 0.05,
                                         "daily_loss_limit": 500})
        cfg_path = tmp_path / "engine.json"
        cfg_path.write_text(json.dumps(raw))
        sent_at_kill: list[int] = []
        in_flight_at_kill: list[int] = []
        for _ in range(KILLS):
            proc = await start_engine(cfg_path, start_ms, t0)
            before = len(sim_orders(sim))
            # kill at a random instant once the engine is trading: half the time the moment an order reaches
            # the venue (the engine has not seen the answer), otherwise up to two path points later
            deadline = time.monotonic() + 10
            while len(sim_orders(sim)) == before and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
            if rng.random() < 0.5:
                await asyncio.sleep(rng.uniform(0.0, 3.0))
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            sent_at_kill.append(len(sim_orders(sim)))
            dead = Store(raw["store"]["url"])  # what the killed process left: orders it had not settled
            in_flight_at_kill.append(len(dead.orders(open_only=True)))
            dead.close()
        # a last start reconciles the store with the venues, then stops gracefully
        proc = await start_engine(cfg_path, start_ms, t0)
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0

        assert sent_at_kill[-1] > 0 and len(set(sent_at_kill)) > 1, sent_at_kill
        print(f"kills={KILLS} orders on the venues at each kill={sent_at_kill} "
              f"open in the store at each kill={in_flight_at_kill}")
        store = Store(raw["store"]["url"])
        try:
            assert_venue_orders_known(sim, store)
            # reconciliation left no order open in the store that the venue does not list as open
            venue_open = {(o.venue, o.client_order_id) for (v, s) in sim.core.markets
                          for o in sim.core.open_orders(ACCOUNT, v, s)}
            for o in store.orders(open_only=True):
                assert (SIM_VENUE[o.venue], venue_client_id(o)) in venue_open, o
            # every venue fill is in the store exactly once, with the venue's numbers
            venue_fills = {(f.venue, f.symbol, f.trade_id): f for (v, s) in sim.core.markets
                           for f in sim.core.trades_for(ACCOUNT, v, s)}
            stored = store.fills()
            keys = [(SIM_VENUE[f.venue], f.symbol, f.trade_id) for f in stored]
            assert len(keys) == len(set(keys)), "a fill was booked twice"
            assert set(keys) == set(venue_fills)
            for f in stored:
                v = venue_fills[(SIM_VENUE[f.venue], f.symbol, f.trade_id)]
                assert (f.qty, f.price) == (v.qty, v.price)
                assert abs(f.fee - v.fee) < Decimal("1e-8")  # the wire carries 8 decimals of the venue's fee
            # the ledger: one fee entry per fill, amounts equal to the fees
            fees = {e["ref"]: Decimal(e["amount"]) for e in store.ledger(kind="fee")}
            assert fees == {f"fee:{f.venue}:{f.symbol}:{f.trade_id}": -f.fee for f in stored if f.fee}
        finally:
            store.close()
