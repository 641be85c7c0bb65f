"""The dead-man means dead: healthy streams with no REST traffic raise nothing, a silent venue or a stopped
engine loop reaches both local receivers. Time is the wall clock (injected monotonic where it is driven)."""

from __future__ import annotations

import asyncio
import time

import pytest
from alert_receivers import AlertReceivers

from ate.monitor.alert_feed import AlertFeed
from ate.monitor.alerts import Notifier
from ate.monitor.deadman import DeadMan
from ate.store import Store


class Monotonic:
    def __init__(self) -> None:
        self.t = 5000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def receivers():
    with AlertReceivers() as r:
        yield r


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'ate.db'}")
    yield s
    s.close()


async def test_healthy_streams_without_rest_raise_nothing_then_a_silent_venue_alerts(store, receivers):
    notifier = Notifier.from_config(receivers.alerts_config(), receivers.env)
    feed = AlertFeed(store, notifier)
    feed.prime()
    mono = Monotonic()
    dead = DeadMan(store, notifier, ["binance", "backpack"], loop_stall_s=10, market_data_stale_s=60,
                   monotonic=mono)
    # Ten minutes of streams ticking every second and not one REST request: the old dead-man alerted at 61 s.
    for _ in range(600):
        mono.t += 1
        dead.market_data("binance")
        dead.market_data("backpack")
        dead.tick()
    assert feed.poll_once() == 0 and dead.health().state == "OK"
    # backpack's stream goes quiet while binance keeps flowing
    for _ in range(61):
        mono.t += 1
        dead.market_data("binance")
        dead.tick()
    assert dead.health().reasons == ["no market data from backpack for 61 s"]
    notifier.start()
    assert feed.poll_once() == 1
    hook, tg = await receivers.both("stream_outage", "no market data from backpack for 61 s")
    assert hook["severity"] == "critical"
    dead.market_data("backpack")
    mono.t += 1
    dead.tick()
    assert feed.poll_once() == 1
    await receivers.both("stream_restored", "backpack")
    await notifier.drain()
    await notifier.stop()
    assert dead.health().state == "OK"


async def test_a_stopped_loop_alerts_from_the_watchdog_while_it_is_stopped(store, receivers):
    notifier = Notifier.from_config(receivers.alerts_config(), receivers.env)
    feed = AlertFeed(store, notifier, poll_s=0.05)
    feed.prime()
    notifier.start()
    feed.start()
    dead = DeadMan(store, notifier, [], loop_stall_s=0.5)
    dead.start()
    await asyncio.sleep(0.3)  # the loop ticks
    assert receivers.webhook.messages == []
    blocked_at = time.monotonic()
    # The engine loop stops (this blocking wait; SIGSTOP is the same to the watchdog): nothing on the loop
    # runs, the watchdog thread alerts on its own.
    got = receivers.webhook.wait_for(lambda b: b.get("kind") == "engine_stalled", 5)
    receivers.telegram.wait_for(lambda b: " engine_stalled: " in b.get("text", ""), 1)
    stopped_for = time.monotonic() - blocked_at
    assert got is not None, "the watchdog did not alert while the loop was stopped"
    assert got[2]["severity"] == "critical" and "engine loop unresponsive" in got[2]["text"]
    assert got[0] - blocked_at < 5
    assert [m for m in receivers.telegram.messages if " engine_stalled: " in m[2]["text"]]
    # running again, the loop records how long it was gone: an event, through the same alert path
    await receivers.both("engine_stalled", "it is running again")
    [stall] = store.events(kind="engine_stalled")
    assert 0.5 < stall.data["seconds"] <= stopped_for + 1
    await dead.stop()
    await feed.stop()
    await notifier.drain()
    await notifier.stop()
    assert dead.health().state == "OK"
