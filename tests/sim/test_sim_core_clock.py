"""Replay clocks: N× speed follows an injected wall clock; the stepping clock only moves forward."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from pathlib import Path

from ate.data.loaders import load_candles
from ate.sim.clock import ScaledClock, SteppingClock
from ate.sim.core import MatchingCore
from ate.sim.instruments import BINANCE_SPOT, KNOWN
from ate.sim.replay import Replayer

SPOT_1M = Path(__file__).resolve().parents[2] / "data" / "binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"


async def test_replay_at_60x_applies_exactly_what_the_scaled_clock_has_reached():
    wall = [100.0]
    candles = load_candles(SPOT_1M)[:5]
    clock = ScaledClock(candles[0].open_ms, 60, wall=lambda: wall[0])
    core = MatchingCore(clock.now_ms)
    m = core.add_market(KNOWN[(BINANCE_SPOT, "BTCUSDT")], D(0), D(0))
    rep = Replayer(core, clock)
    rep.add_candles(m, candles)
    task = asyncio.create_task(rep.run())
    try:
        await asyncio.sleep(0.01)
        assert m.update_id == 1 and m.candles == []  # only the open at t0 is due
        wall[0] += 1.0  # one wall second = one replayed minute
        for _ in range(100):
            if m.candles:
                break
            await asyncio.sleep(0.01)
        assert m.update_id == 5 and m.candles == candles[:1]  # 4 path points + the first close
        assert clock.now_ms() == candles[0].open_ms + 60_000
    finally:
        task.cancel()


def test_stepping_clock_runs_in_real_time_and_jumps_only_forward():
    wall = [0.0]
    clock = SteppingClock(1_000, wall=lambda: wall[0])
    wall[0] = 0.5
    assert clock.now_ms() == 1_500
    clock.set(10_000)
    assert clock.now_ms() == 10_000
    clock.set(5_000)  # the past is ignored
    assert clock.now_ms() == 10_000
    wall[0] = 1.0
    assert clock.now_ms() == 10_500 and clock.advance(500) == 11_000
