"""Venue pauses survive a restart: a real 429 from the simulator's Binance face (weight spent over the
limit) is persisted; a restarted client waits it out on the wall clock — no request before it ends, so no
418 ban — and the wait is announced through the alert path. (The engine restarted inside a ban, on
hand-driven clocks: test_monitor_ban_start.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from alert_receivers import AlertReceivers
from sim_requests import Seen, spend_weight_to_the_limit

from ate.config.sim import SimConfig
from ate.model import MarketKind
from ate.monitor.alert_feed import AlertFeed
from ate.monitor.alerts import Notifier
from ate.monitor.pauses import STATE_KEY, PauseBook, stored_pauses
from ate.sim.runner import run_simulator
from ate.store import Store
from ate.venues.binance.client import BinanceClient, BinanceUrls
from ate.venues.credentials import Credentials
from ate.venues.errors import VenueUnknown

REPO = Path(__file__).resolve().parents[2]
SPOT = "data/binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"
# 8 s of replay before a weight window ends: the 429 below tells the client to wait out the rest of it.
START_MS = 1748822400000 + 3_600_000 - 8_000
KEY, SECRET = "pause-key", "pause-secret"
pytestmark = [pytest.mark.skipif(not (REPO / SPOT).exists(), reason="simulator data files absent"),
              pytest.mark.timeout(60)]


def sim_config() -> SimConfig:
    # speed 1: the replay clock runs with the wall clock, as a venue's does
    return SimConfig.model_validate({
        "speed": 1, "start_ms": START_MS,
        "accounts": [{"id": "alice", "binance_api_key": KEY, "binance_api_secret": SECRET}],
        "markets": [{"venue": "binance-spot", "symbol": "BTCUSDT", "data": SPOT}]})


def client(sim) -> BinanceClient:
    rest, ws = sim.url("binance-spot", "rest"), sim.url("binance-spot", "ws")
    return BinanceClient(MarketKind.SPOT, BinanceUrls(rest, ws), Credentials(KEY, SECRET))


async def test_restart_inside_a_429_period_sends_nothing_until_it_ends(tmp_path, monkeypatch):
    seen = Seen(monkeypatch)
    path = f"sqlite:///{tmp_path / 'ate.db'}"
    with AlertReceivers() as receivers:
        async with run_simulator(sim_config(), base_dir=REPO) as sim:
            await spend_weight_to_the_limit(sim.url("binance-spot", "rest"))
            # the engine before the restart: its next request meets the 429, and the pause is persisted
            store = Store(path)
            first = client(sim)
            PauseBook(store, lambda: 0).attach([first.limiter])
            first.rest.max_attempts = 1
            with pytest.raises(VenueUnknown, match="rate limited"):
                await first.server_time_ms()
            await first.close()
            until = first.limiter.paused_until_ms
            assert seen.requests[-1][2] == 429 and until > time.time_ns() // 1_000_000
            assert stored_pauses(store) == {"binance_spot": {"until_ms": until, "reason": "HTTP 429"}}
            store.close()

            # the restart: a new process, a new client, the same store
            store = Store(path)
            notifier = Notifier.from_config(receivers.alerts_config(), receivers.env)
            feed = AlertFeed(store, notifier, poll_s=0.05)
            feed.prime()
            notifier.start()
            feed.start()
            second = client(sim)
            PauseBook(store, lambda: 0).attach([second.limiter])
            restarted = time.time_ns() // 1_000_000
            before = len(seen.requests)
            # sending now would be a 418 ban: the simulator remembers it told this IP to wait
            [ip_state] = seen.face.limiter._clients.values()
            assert ip_state.told_to_wait_until > sim.ctx.server_time_ms()
            server_ms = await second.server_time_ms()
            await second.close()
            sent = seen.requests[before:]
            assert [(p, s) for _, p, s in sent] == [("/api/v3/time", 200)]
            assert sent[0][0] >= until, f"sent {until - sent[0][0]} ms inside the pause"
            assert second.rest.status_counts == {200: 1} and server_ms > 0
            assert second.limiter.throttled_ms >= until - restarted - 50
            hook, _ = await receivers.both("venue_paused", "start-up waits out binance_spot's HTTP 429")
            assert "no request is sent before" in hook["text"]
            await feed.stop()
            await notifier.drain()
            await notifier.stop()
            # once over, a pause is not restored again
            assert stored_pauses(store) == {} and store.get_state(STATE_KEY)["binance_spot"]["until_ms"] == until
            store.close()


def test_a_418_ban_is_an_api_violation_and_a_429_a_pause(tmp_path):
    from ate.venues.clock import ManualClock

    store = Store(f"sqlite:///{tmp_path / 'ate.db'}")
    wall = ManualClock(1_700_000_000_000)  # the pause clock, whatever the real time
    spot = BinanceClient(MarketKind.SPOT, BinanceUrls("http://127.0.0.1:9", ""), pause_clock=wall)
    book = PauseBook(store, lambda: 7)
    book.attach([spot.limiter])
    spot.limiter.pause(30, "HTTP 429")
    spot.limiter.pause(120, "HTTP 418")
    pause, ban = reversed(store.events(limit=2))
    assert (pause.kind, pause.severity.value, pause.data["code"]) == ("venue_paused", "warning", 429)
    assert (ban.kind, ban.severity.value, ban.data["code"]) == ("api_violation", "critical", 418)
    assert "banned this IP (HTTP 418) for 120 s" in ban.message
    assert book.in_force() == {"binance_spot": "HTTP 418, 120 s left"}
    assert stored_pauses(store, wall.now_ms())["binance_spot"]["reason"] == "HTTP 418"
    store.close()
