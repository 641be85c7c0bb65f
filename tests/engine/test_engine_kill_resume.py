"""Issue 13, finding 4, over the wire: a strategy's state is written with the orders it decides and with the
fills it receives, so kill -9 at any of these points loses nothing.

A real engine process trades against the simulator (in this process) and is SIGKILLed right after the carry's
decision unit commits (its write-ahead is in the store), right after the pair's fills reach the venue, or
20 replayed seconds later (before the next minute's timer); for the directional, right after its entry fills.
The engine is then started again (in this process, on the same replay clock): the carry knows its pair (the
venue's holdings, both legs), opens no second one, and its exit rule still closes it; the directional long
still has its stop, and the price's own fall through it sends the exit. The emergency ladder's and close-all's
view (`TradingCore.holdings()`) holds the positions.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from decimal import Decimal
from pathlib import Path

import pytest
from engine_driver import SharedReplayClock
from engine_support import (
    ACCOUNT,
    ENV,
    PERP_2025,
    ROOT,
    SPOT_2025,
    STAND_IN_RATE,
    data_present,
    engine_config_dict,
    sim_config,
    sim_orders,
)
from test_engine_crash import SPEED, start_engine

from ate.config import parse_config
from ate.engine import Engine
from ate.model import OrderStatus, Side
from ate.risk.ladder import flatten_intents
from ate.sim.clock import ScaledClock
from ate.sim.runner import run_simulator
from ate.store import Store

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(180)]

D = Decimal
CARRY_START = 1749600000000  # 2025-06-11 00:00: the rate is positive, the eager carry enters at once
DIRECTIONAL_START = 1749603390000  # 00:56:30: the 01:00 decision bar says ENTER long (real 1m data)
# no BTC before the engine trades: what the venue holds afterwards is the strategies' own
BALANCES = {"binance-spot": {"USDT": "5000"}, "binance-usdm": {"USDT": "2000"},
            "backpack": {"USDC": "5000", "BTC": "0.05"}}
OFF = {"enabled": False}
CARRY = {"arbitrage": OFF, "directional": OFF,
         "funding_carry": {"min_rate_bps_8h": 0, "persistence": 1, "notional": 300, "fee_spot_bps": 0,
                           "fee_perp_bps": 0, "slippage_bps": 0}}
# a stop a twentieth of an ATR under the entry: the real dip of 01:01-01:03 goes through it; no target in reach
DIRECTIONAL = {"arbitrage": OFF, "funding_carry": OFF, "directional": {"stop_atr": 0.05, "target_atr": 50}}


async def until(check, seconds: float, what: str):
    """Poll a real asynchronous outcome (another process, the venue) with a deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        await asyncio.sleep(0.005)
    raise AssertionError(f"not within {seconds} s: {what}")


def venue_btc(sim) -> Decimal:
    held = sim.core.balances(ACCOUNT, "binance-spot").get("BTC")
    return held.total if held is not None else D(0)


def venue_perp(sim) -> Decimal:
    pos = sim.core.positions(ACCOUNT, "binance-usdm").get("BTCUSDT")
    return pos.qty if pos is not None else D(0)


class Session:
    """The simulator on a wall-derived replay clock, one engine config, kill -9 and restarts."""

    def __init__(self, tmp_path: Path, start_ms: int, strategies: dict) -> None:
        self.tmp, self.start_ms, self.strategies = tmp_path, start_ms, strategies
        self.t0 = time.time()

    async def __aenter__(self):
        clock = ScaledClock(self.start_ms, SPEED, wall=time.time)
        clock._t0 = self.t0  # the engine processes derive replay time from the same wall instant
        cfg = sim_config(balances=BALANCES, start_ms=self.start_ms, spot_data=SPOT_2025, perp_data=PERP_2025,
                         backpack_data=PERP_2025)
        self._sim_cm = run_simulator(cfg, clock=clock, base_dir=ROOT)
        self.sim = await self._sim_cm.__aenter__()
        self.raw = engine_config_dict(self.sim, self.tmp / "ate.db", mode="canary",
                                      strategies={**self.strategies, "arbitrage": {**OFF, **STAND_IN_RATE}},
                                      canary={"initial_capital": 10000, "max_position_size": 0.05,
                                              "daily_loss_limit": 500},
                                      risk_limits={"trusted_price_max_age_s": 120},
                                      shutdown={"cancel_orders": False})
        self.cfg_path = self.tmp / "engine.json"
        self.cfg_path.write_text(json.dumps(self.raw))
        self.store = Store(self.raw["store"]["url"])
        return self

    async def __aexit__(self, *exc) -> None:
        self.store.close()
        await self._sim_cm.__aexit__(*exc)

    async def process(self):
        return await start_engine(self.cfg_path, self.start_ms, self.t0)

    def orders(self, strategy: str):
        return [o for o in self.store.orders() if o.strategy == strategy]

    async def restart(self, monkeypatch) -> Engine:
        """The engine again, in this process: its strategies and risk can be looked at."""
        for k, v in ENV.items():
            monkeypatch.setenv(k, v)
        monkeypatch.chdir(ROOT)
        engine = Engine(parse_config(self.raw), clock=SharedReplayClock(self.start_ms, self.t0, SPEED))
        await engine.start()
        return engine


def holdings(engine: Engine, strategy: str) -> dict[str, Decimal]:
    return {h.instrument.key: h.qty for h in engine.core.holdings() if h.strategy == strategy}


@pytest.mark.parametrize("kill_at", ["decided", "filled", "before_timer"])
async def test_carry_pair_survives_kill_9(tmp_path, monkeypatch, kill_at):
    async with Session(tmp_path, CARRY_START, CARRY) as s:
        proc = await s.process()
        if kill_at == "decided":  # the decision unit committed: both legs' write-ahead and the carry's state
            await until(lambda: len(s.orders("funding_carry")) >= 2, 60, "the carry decides a pair")
        else:
            await until(lambda: venue_btc(s.sim) > 0 and venue_perp(s.sim) < 0, 60, "the pair fills")
            if kill_at == "before_timer":
                await asyncio.sleep(2.0)  # 20 s of replay: the strategy has not been through a timer since
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        sent = len(sim_orders(s.sim))
        assert sent <= 2  # at most the one pair reached the venue

        engine = await s.restart(monkeypatch)
        try:
            carry = next(iter(engine.core.by_name["funding_carry"].slots.values()))  # the one pair
            await until(lambda: not carry.pending and carry.phase in ("open", "flat"), 30, "the pair settles")
            if kill_at == "decided" and sent < 2:
                # the kill beat the sends: what never reached the venue is closed as never sent, a lone leg is
                # unwound, and the carry enters from scratch — never holding half a pair
                assert sent == 1 or (carry.phase == "flat" and venue_perp(s.sim) == 0)
                await until(lambda: venue_perp(s.sim) < 0 and carry.phase == "open" and not carry.pending, 60,
                            "the carry enters anew")
            assert carry.phase == "open"
            spot, perp = venue_btc(s.sim), venue_perp(s.sim)
            assert spot > 0 and perp < 0
            # the carry knows its pair: the venue's holdings, both legs (the spot net of the fee taken in BTC)
            assert (carry.spot_qty, carry.perp_qty) == (spot, perp)
            assert holdings(engine, "funding_carry") == {"binance:BTCUSDT": spot, "binance_usdm:BTCUSDT": perp}
            assert engine.core.risk.position("binance:BTCUSDT") == spot
            assert engine.core.risk.position("binance_usdm:BTCUSDT") == perp
            closes = {(i.venue, i.side, i.qty, i.reduce_only) for i in flatten_intents(engine.core.holdings())}
            assert closes == {("binance", Side.SELL, spot, True), ("binance_usdm", Side.BUY, -perp, True)}

            orders_at_venue = len(sim_orders(s.sim))
            await asyncio.sleep(3.0)  # 30 s of replay: candles, a timer, funding marks
            assert len(sim_orders(s.sim)) == orders_at_venue, "a second pair was opened"
            assert (venue_btc(s.sim), venue_perp(s.sim)) == (spot, perp)

            # the exit rule still closes the restored pair: funding now counts as below the exit threshold
            carry.cfg = carry.cfg.model_copy(update={"exit_threshold_bps_8h": 10_000.0, "exit_periods": 1})
            await until(lambda: venue_perp(s.sim) == 0 and carry.phase == "flat", 60, "the carry exits")
            step = engine.core.portfolio.instruments["binance:BTCUSDT"].step_size
            assert venue_btc(s.sim) < step  # sold down to the venue's grid
            assert {(o.venue, o.side) for o in s.orders("funding_carry")} == {
                ("binance", Side.BUY), ("binance_usdm", Side.SELL), ("binance", Side.SELL), ("binance_usdm", Side.BUY)}
        finally:
            await engine.stop()


@pytest.mark.parametrize("kill_at", ["decided", "filled"])
async def test_directional_long_keeps_its_stop_across_kill_9(tmp_path, monkeypatch, kill_at):
    async with Session(tmp_path, DIRECTIONAL_START, DIRECTIONAL) as s:
        proc = await s.process()
        if kill_at == "decided":  # the entry's write-ahead and the strategy's "entering" committed together
            await until(lambda: s.orders("directional"), 90, "the directional decides at the 01:00 bar")
        else:  # right after the entry's fill reached the venue: the process may or may not have booked it
            await until(lambda: venue_btc(s.sim) > 0, 90, "the directional enters at the 01:00 decision")
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

        engine = await s.restart(monkeypatch)
        try:
            d = next(iter(engine.core.by_name["directional"].slots.values()))  # the one market
            await until(lambda: d.phase in ("open", "flat") and not d.pending, 30, "the entry settles")
            if not sim_orders(s.sim):  # the kill beat the send: closed as never sent, the strategy flat again
                assert kill_at == "decided" and d.phase == "flat" and d.trade is None
                assert [o.status for o in s.orders("directional")] == [OrderStatus.REJECTED]
                return
            (entry,) = sim_orders(s.sim)
            assert entry.side is Side.BUY
            await until(lambda: d.phase == "open", 30, "the long is known after the restart")
            held = venue_btc(s.sim)
            assert d.trade.long and d.trade.qty == held
            fill_px = float(next(o for o in s.store.orders() if o.strategy == "directional").avg_price)
            atr = d.trade.atr
            # the stop and target fixed at the entry fill (0.05 and 50 ATR from it), not lost with the process
            assert d.trade.stop == pytest.approx(fill_px - 0.05 * atr)
            assert d.trade.target == pytest.approx(fill_px + 50 * atr)
            assert holdings(engine, "directional") == {"binance:BTCUSDT": held}
            assert engine.core.risk.position("binance:BTCUSDT") == held
            assert {(i.side, i.qty) for i in flatten_intents(engine.core.holdings())} == {(Side.SELL, held)}

            # the replayed market falls through the stop: the exit order goes out and sells the long
            await until(lambda: d.phase == "flat", 90, "the stop exits the long")
            exits = [o for o in s.orders("directional") if o.side is Side.SELL]
            assert exits and exits[-1].status is OrderStatus.FILLED
            assert {o.meta.get("reason") for o in exits} == {"stop"}
            inst = engine.core.portfolio.instruments["binance:BTCUSDT"]
            assert exits[-1].filled_qty == inst.round_qty(held)  # all of it on the venue's grid
            assert venue_btc(s.sim) == held - inst.round_qty(held) < inst.step_size
        finally:
            await engine.stop()
