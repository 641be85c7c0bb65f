"""Same seed, same faults: every random fault kind is drawn from the run's one seeded generator, and
a fault armed on demand changes its own occasions only, never the random draws after it."""

from __future__ import annotations

from decimal import Decimal as D

from sim_core_support import ROOT
from sim_faults_support import small_config

from ate.config.sim import FaultSpec
from ate.model import OrderType, Side, TimeInForce
from ate.sim.clock import ManualClock
from ate.sim.faults import Faults
from ate.sim.inject import Injector
from ate.sim.runner import build_world

ALL_RATES = FaultSpec(http_5xx=0.05, http_timeout=0.02, reject=0.05, ws_drop=0.01, ws_stall=0.01, stale=0.05,
                      depth_gap=0.05, cancel_202=0.05, crossed_book=0.03, locked_book=0.03, zero_price=0.03,
                      negative_price=0.03, nan_price=0.03, ws_duplicate=0.05, ws_reorder=0.05, ws_malformed=0.05,
                      http_429=0.05, maintenance=0.01, ioc_rest_first=0.2, ioc_stream_first=0.2)


def _face_decisions(seed: int, arm: bool = False) -> list:
    """The decisions faces ask for over a fixed sequence of occasions."""
    clock = ManualClock(0)
    f = Faults(ALL_RATES, seed, clock.now_ms)
    if arm:
        f.arm("ws_duplicate", venue="binance-spot", count=3)
        f.arm("nan_price", venue="binance-spot", symbol="BTCUSDT")
    out = []
    for _ in range(300):
        clock.advance(1_000)
        out.append((f.http_fault("binance-spot"), f.maintenance("binance-spot"), f.rate_limited("binance-spot"),
                    f.reject_order("binance-spot"), f.ioc_order("binance-spot"), f.ws_fault("binance-spot"),
                    f.stale("binance-spot"), f.depth_gap("binance-spot"), f.book_fault("binance-spot", "BTCUSDT"),
                    f.cancel_202("backpack")))
    return out


def test_same_seed_same_face_faults_and_arming_does_not_shift_them():
    a, b, c = _face_decisions(1), _face_decisions(1), _face_decisions(2)
    assert a == b and a != c
    kinds = {x for row in a for x in row if isinstance(x, str)}
    assert {"5xx", "timeout", "rest_first", "stream_first", "duplicate", "reorder", "malformed",
            "crossed_book", "nan_price"} <= kinds  # the spec's kinds all fire at these rates
    # armed shots change their own occasions and nothing after them
    armed = _face_decisions(1, arm=True)
    frames = [row[5] for row in armed]
    assert frames[:3] == ["duplicate"] * 3 and frames[3:] == [row[5] for row in a][3:]
    assert armed[0][8] == "nan_price" and [row[8] for row in armed[1:]] == [row[8] for row in a[1:]]
    assert [row[:5] + row[6:8] + row[9:] for row in armed] == [row[:5] + row[6:8] + row[9:] for row in a]


def _world_run(seed: int) -> tuple[list, list, D]:
    """Two replayed hours with the world-changing kinds at random: shocks, halts, partial fills and
    liquidations, all drawn by the injector from the seeded Faults."""
    spec = FaultSpec(spike=0.01, drop=0.01, halt=0.005, halt_ms=120_000, partial_fill=0.5, liquidate=0.002)
    core, replayer, clock, _ = build_world(small_config(seed=seed), ManualClock(), base_dir=ROOT)
    faults = Faults(spec, seed, clock.now_ms)
    injector = Injector(core, replayer, faults, clock.now_ms)
    fills = []
    for minute in range(120):
        replayer.advance_to(clock.now_ms() + 60_000)
        for venue in ("binance-spot", "binance-usdm"):
            if core.market(venue, "BTCUSDT").halted:
                continue
            side = Side.BUY if minute % 2 == 0 else Side.SELL
            o, got = core.place_order("alice", venue, "BTCUSDT", side, OrderType.MARKET, D("0.01"),
                                      tif=TimeInForce.IOC)
            fills.append((venue, o.status.value, sum((f.qty for f in got), D(0))))
    injector.close()
    return faults.log, fills, core.balances("alice", "binance-usdm")["USDT"].total


def test_same_seed_same_world_faults_over_a_replay():
    a, b, c = _world_run(5), _world_run(5), _world_run(6)
    assert a == b and a[0] != c[0]
    kinds = {k for k, _, _ in a[0]}
    assert {"spike", "drop", "halt", "partial_fill"} <= kinds
    assert any(qty == D("0.005") for _, _, qty in a[1])  # a partial fill of the IOC orders
