"""Every alert kind the operator relies on, from the real engine against the simulator (real venue
clients, real wire protocols on 127.0.0.1, the simulator's fault injection), delivered to a local webhook
AND a local Telegram Bot API receiver within 5 s; and the dead-man over the running engine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from alert_receivers import BOT_TOKEN, TOKEN_ENV, AlertReceivers, ThreadedReceiver

ENGINE_TESTS = Path(__file__).resolve().parents[1] / "engine"
sys.path.insert(0, str(ENGINE_TESTS))  # the engine's end-to-end harness (simulator + engine on loopback)
from engine_support import (  # noqa: E402
    ACCOUNT,
    PERP_2025,
    ROOT,
    SPOT_2025,
    RequestCounter,
    data_present,
    settle,
    sim_config,
    stop_engine,
    world,
)

from ate.config import parse_config  # noqa: E402
from ate.engine import Engine  # noqa: E402
from ate.model import OrderIntent, OrderStatus, OrderType, Side, TimeInForce  # noqa: E402
from ate.model.intent import Purpose  # noqa: E402

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(120)]
JUNE_2025 = 1748908800000  # 2025-06-03 00:00 UTC: every market of the 2025 files streams 1m data


@contextlib.asynccontextmanager
async def alerting_engine(tmp_path, monkeypatch, receivers: AlertReceivers, *, monitor: dict | None = None,
                          extra_sections: dict | None = None, **world_kw):
    monkeypatch.setenv(TOKEN_ENV, BOT_TOKEN)
    sections = {"monitor": {"enabled": False, "alerts": receivers.config(poll_s=0.05), **(monitor or {})},
                **(extra_sections or {})}
    async with world(tmp_path, monkeypatch, engine_sections=sections, **world_kw) as (sim, engine, drive, raw):
        await drive.run(60_000, 5_000)  # priced, modules reporting
        yield sim, engine, drive, raw


def crash_btc(sim, factor: float) -> None:
    """The market moves (both venues' BTC books follow for the rest of the test)."""
    sim.inject("drop", venue="binance-spot", symbol="BTCUSDT", factor=factor, ticks=1_000_000)
    sim.inject("drop", venue="backpack", symbol="BTC_USDC", factor=factor, ticks=1_000_000)


@pytest.fixture
def receivers():
    with AlertReceivers() as r:
        yield r


async def test_daily_loss_breach(tmp_path, monkeypatch, receivers):
    async with alerting_engine(tmp_path, monkeypatch, receivers) as (sim, engine, drive, _):
        crash_btc(sim, 0.97)  # 3 % on 0.2 BTC held: a loss above the 300 USD daily limit, no emergency level
        await drive.run(30_000, 1_000)
        hook, tg = await receivers.both("risk_breach", "daily loss")
        assert engine.core.daily.loss > 300
        assert hook["severity"] == "critical" and "reached limit 300" in hook["text"]
        assert tg["text"].startswith("[ate] CRITICAL risk_breach: daily loss ")
    assert "emergency_action" not in [b.get("kind") for _, _, b in receivers.webhook.messages]


async def test_emergency_level_halts_and_says_so(tmp_path, monkeypatch, receivers):
    async with alerting_engine(tmp_path, monkeypatch, receivers) as (sim, engine, drive, _):
        crash_btc(sim, 0.5)
        await drive.run(180_000, 5_000)
        hook, _ = await receivers.both("emergency_action", "emergency level 5")
        assert hook["severity"] == "critical"
        await receivers.both("trading_state", "ACTIVE -> HALTED by emergency: level 5")


async def test_ate_kill_while_the_engine_runs(tmp_path, monkeypatch, receivers):
    async with alerting_engine(tmp_path, monkeypatch, receivers) as (sim, engine, drive, _):
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ate.cli", "kill", "--reason", "fat finger drill", "--config",
            str(tmp_path / "engine.json"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        # `ate kill` writes the kill file, then persists HALTED: the engine may see either first (the file:
        # "by file: cli …"; the store: "by cli"), the operator hears of the halt and its reason both ways
        hook, tg = await receivers.both("trading_state", "fat finger drill")
        assert "ACTIVE -> HALTED by " in hook["text"] and hook["severity"] == "critical"
        assert tg["text"].startswith("[ate] CRITICAL trading_state: ACTIVE -> HALTED by ")
        # the running engine does the kill switch's cleanup (cancel everything), which is reported too
        hook, _ = await receivers.both("kill_switch", "fat finger drill")
        assert hook["text"].startswith("kill switch activate by ")
        assert engine.killswitch.halted


async def test_dead_man_quiet_on_healthy_streams_without_rest_then_a_stopped_loop_alerts(
        tmp_path, monkeypatch, receivers):
    with ThreadedReceiver() as beats:
        monitor = {"loop_stall_s": 1.0, "market_data_stale_s": 1.0, "heartbeat_url": f"{beats.url}/ping/ate",
                   "heartbeat_interval_s": 0.2}
        june = sim_config(spot_data=SPOT_2025, perp_data=PERP_2025, backpack_data=SPOT_2025, start_ms=JUNE_2025)
        async with alerting_engine(tmp_path, monkeypatch, receivers, monitor=monitor, sim_cfg=june) as (
                sim, engine, drive, _):
            requests = RequestCounter(monkeypatch)
            started = time.monotonic()
            while time.monotonic() - started < 3:  # 3 s of wall time, three times the staleness limit
                await drive.step(1_000)
                await asyncio.sleep(0.01)  # paced on the wall clock: the dead-man measures wall time
            assert sum(requests.seen.values()) == 0, f"REST traffic in steady state: {dict(requests.seen)}"
            assert engine.observer.health().state == "OK"
            await asyncio.sleep(0.2)  # the feed hands over anything written
            assert receivers.webhook.messages == [] and receivers.telegram.messages == []
            # the loop stops: this blocking wait holds it, only the watchdog thread can speak
            blocked = time.monotonic()
            got = receivers.webhook.wait_for(lambda b: b.get("kind") == "engine_stalled", 5)
            assert got is not None and got[0] - blocked < 5
            tg = receivers.telegram.wait_for(lambda b: " engine_stalled: " in b.get("text", ""), 5)
            assert tg is not None and tg[0] - blocked < 5
            # the heartbeat carried the state: OK while healthy (the receiver alerts when pings stop)
            oks = [path for _, path, b in beats.messages if b.get("raw") == "OK"]
            assert oks and set(oks) == {"/ping/ate"}


# The ledger books money the engine did not move as events of its own kinds (`external_transfer` for a
# deposit or withdrawal, `external_fill` for a liquidation or a trade made elsewhere): the alert path
# meets it at the events table. Canary mode: user streams and reconciliation run.
NO_STRATEGIES = {"strategies": {"arbitrage": {"enabled": False}, "funding_carry": {"enabled": False},
                                "directional": {"enabled": False}},
                 "canary": {"initial_capital": 10000, "max_position_size": 0.05, "daily_loss_limit": 300},
                 "shutdown": {"cancel_orders": False}}


async def start(raw: dict, drive) -> Engine:
    drive.clock.free_running = False
    engine = Engine(parse_config(raw), clock=drive.clock)
    await engine.start()
    drive.engine = engine
    await drive.quiet()
    return engine




def ioc(engine: Engine, market: str, side: Side, qty: str):
    venue, _, symbol = market.partition(":")
    with engine.core.unit():
        return engine.core.orders.submit(OrderIntent(venue, symbol, side, Decimal(qty), None, "alerts",
                                                     Purpose.ENTRY, type=OrderType.MARKET, tif=TimeInForce.IOC))


async def test_a_withdrawal_made_while_down_alerts_at_restart(tmp_path, monkeypatch, receivers):
    monkeypatch.setenv(TOKEN_ENV, BOT_TOKEN)
    sections = {"monitor": {"enabled": False, "alerts": receivers.config(poll_s=0.05)}, **NO_STRATEGIES}
    async with world(tmp_path, monkeypatch, mode="canary", engine_sections=sections, start_engine=False) as (
            sim, _, drive, raw):
        first = await start(raw, drive)
        await drive.run(60_000, 15_000)
        await stop_engine(first, drive)
        sim.inject("withdraw", account=ACCOUNT, venue="binance-spot", asset="USDT", amount="100")
        second = await start(raw, drive)
        try:
            await drive.run(5_000, 1_000)
            hook, tg = await receivers.both("external_transfer", "USDT -100")
            assert hook["severity"] == "critical"
        finally:
            await stop_engine(second, drive)


async def test_a_liquidation_alerts(tmp_path, monkeypatch, receivers):
    june = sim_config(spot_data=SPOT_2025, perp_data=PERP_2025, backpack_data=PERP_2025, start_ms=JUNE_2025)
    async with alerting_engine(tmp_path, monkeypatch, receivers, mode="canary", sim_cfg=june,
                               extra_sections=NO_STRATEGIES) as (sim, engine, drive, _):
        order = ioc(engine, "binance_usdm:BTCUSDT", Side.BUY, "0.003")
        assert order is not None
        assert await settle(lambda: engine.store.get_order(order.client_order_id).status is OrderStatus.FILLED,
                            rounds=3000)
        sim.inject("liquidate", account=ACCOUNT, venue="binance-usdm", symbol="BTCUSDT")
        await drive.run(30_000, 5_000)
        hook, _ = await receivers.both("external_fill", "BTCUSDT SELL 0.003")
        assert hook["severity"] == "critical"  # money the engine did not move
