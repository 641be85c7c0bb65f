"""Heartbeat and dead-man checks against local aiohttp receivers (success, failure status, receiver down)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from monitor_harness import Receiver, free_port_url

from ate.monitor.alerts import Notifier, WebhookSink
from ate.monitor.heartbeat import Heartbeat


@pytest.fixture
async def session():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


async def test_ready_pings_url_and_not_ready_pings_fail_with_reasons(engine_view, session):
    view, rec, controls = engine_view
    receiver = Receiver()
    async with receiver as base:
        beat = Heartbeat(view, session, url=f"{base}/ping/abc-123")
        result = await beat.beat()
        assert (result.ready, result.delivered, result.status) == (True, True, 200)
        controls.reconciled = False
        result = await beat.beat()
        assert (result.ready, result.delivered) == (False, True)
    assert receiver.pings == [("POST", "/ping/abc-123", ""),
                              ("POST", "/ping/abc-123/fail", "reconciliation not done")]


async def test_failure_status_and_receiver_down_never_raise(engine_view, session):
    view, *_ = engine_view
    async with Receiver(status=500) as base:
        result = await Heartbeat(view, session, url=base).beat()
    assert (result.delivered, result.status) == (False, 500)
    result = await Heartbeat(view, session, url=await free_port_url()).beat()
    assert result.delivered is False and result.error == "ClientConnectorError"


async def test_run_loop_beats_every_interval_with_injected_sleep(engine_view, session):
    view, *_ = engine_view
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            raise asyncio.CancelledError

    receiver = Receiver()
    async with receiver as base:
        with pytest.raises(asyncio.CancelledError):
            await Heartbeat(view, session, url=base, interval_s=60, sleep=sleep).run()
    assert slept == [60, 60, 60]
    assert len(receiver.pings) == 3


async def test_dead_man_alerts_when_venue_unreachable_for_n_minutes(engine_view, session, clock):
    view, rec, _ = engine_view
    alerts = Receiver()
    async with alerts as base:
        notifier = Notifier([WebhookSink(f"{base}/hook")], min_interval_s=600)
        notifier.start()
        beat = Heartbeat(view, session, url=None, dead_man_minutes=5, notifier=notifier)
        assert await beat.check_dead_man() == []
        clock.advance(4 * 60_000)
        rec.request("backpack", ok=True)
        for _ in range(10):  # binance keeps failing
            rec.request("binance", ok=False)
        assert await beat.check_dead_man() == []
        clock.advance(61_000)
        assert await beat.beat() is None  # no heartbeat URL: only the dead-man check runs
        assert await beat.check_dead_man() == ["binance"]  # repeated: deduplicated by the notifier
        await notifier.drain()
        await notifier.stop()
    assert len(alerts.pings) == 1
    method, path, body = alerts.pings[0]
    assert (method, path) == ("POST", "/hook")
    assert '"kind": "venue_unreachable"' in body and "binance" in body and "5 min" in body
