"""Heartbeat pings carry the engine's state (OK / DEGRADED with reasons / HALTED) to a local receiver."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from monitor_harness import Receiver, free_port_url

from ate.monitor.deadman import DeadMan, Health
from ate.monitor.heartbeat import Heartbeat


class Monotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def session():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


async def test_beats_carry_ok_degraded_and_halted(engine_view, session, store):
    _, _, engine = engine_view
    mono = Monotonic()
    # the loop's liveness has its own test (test_monitor_deadman); here only market data moves the state
    dead = DeadMan(store, None, ["binance", "backpack"], market_data_stale_s=60, loop_stall_s=3600,
                   monotonic=mono)
    receiver = Receiver()
    async with receiver as base:
        beat = Heartbeat(session, dead.health, url=f"{base}/ping/abc-123")
        mono.t += 30
        dead.market_data("binance")
        dead.tick()
        result = await beat.beat()
        assert (result.state, result.delivered, result.status) == ("OK", True, 200)
        mono.t += 45
        dead.market_data("binance")  # backpack silent for 45 + 30 s of wall time
        dead.tick()
        assert (await beat.beat()).state == "DEGRADED"
        await engine.kill_switch.activate("operator test", "tester")
        assert (await beat.beat()).state == "HALTED"
    assert receiver.pings == [("POST", "/ping/abc-123", "OK"),
                              ("POST", "/ping/abc-123/fail", "DEGRADED: no market data from backpack for 75 s"),
                              ("POST", "/ping/abc-123/fail", "HALTED: tester: operator test")]


async def test_failure_status_and_receiver_down_never_raise(session):
    def health() -> Health:
        return Health("OK")

    async with Receiver(status=500) as base:
        result = await Heartbeat(session, health, url=base).beat()
    assert (result.delivered, result.status) == (False, 500)
    result = await Heartbeat(session, health, url=await free_port_url()).beat()
    assert result.delivered is False and result.error == "ClientConnectorError"


async def test_run_loop_beats_every_interval_with_injected_sleep(session):
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            raise asyncio.CancelledError

    receiver = Receiver()
    async with receiver as base:
        with pytest.raises(asyncio.CancelledError):
            await Heartbeat(session, lambda: Health("OK"), url=base, interval_s=60, sleep=sleep).run()
    assert slept == [60, 60, 60]
    assert len(receiver.pings) == 3
