"""Venue pauses survive a restart: a real 429 from the simulator's Binance face (weight spent over the
limit) is persisted; a restarted client waits it out on the wall clock — no request before it ends, so no
418 ban — and the wait is announced through the alert path."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from alert_receivers import AlertReceivers
from prom_lint import lint
from prometheus_client.parser import text_string_to_metric_families
from sim_requests import Seen, spend_weight_to_the_limit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))  # the engine's end-to-end harness
from engine_support import ENV, PERP_2025, SPOT_2025, engine_config_dict  # noqa: E402
from engine_support import sim_config as engine_sim_config  # noqa: E402

from ate.config import parse_config  # noqa: E402
from ate.config.sim import SimConfig  # noqa: E402
from ate.engine import Engine  # noqa: E402
from ate.model import MarketKind  # noqa: E402
from ate.monitor.alert_feed import AlertFeed  # noqa: E402
from ate.monitor.alerts import Notifier  # noqa: E402
from ate.monitor.pauses import STATE_KEY, PauseBook, stored_pauses  # noqa: E402
from ate.monitor.prom import Exposition  # noqa: E402
from ate.monitor.view import StoreView  # noqa: E402
from ate.sim.runner import run_simulator  # noqa: E402
from ate.store import Store  # noqa: E402
from ate.venues.binance.client import BinanceClient, BinanceUrls  # noqa: E402
from ate.venues.credentials import Credentials  # noqa: E402
from ate.venues.errors import VenueUnknown  # noqa: E402

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


class ReplayAtWallSpeed:
    """The engine's clock on a simulator replaying at speed 1 (sleeps are wall sleeps)."""

    def __init__(self, sim) -> None:
        self.sim = sim

    def now_ms(self) -> int:
        return self.sim.clock.now_ms()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def test_engine_start_up_waits_out_a_persisted_pause_visibly(tmp_path, monkeypatch):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(REPO)
    seen = Seen(monkeypatch)
    cfg = engine_sim_config(spot_data=SPOT_2025, perp_data=PERP_2025, backpack_data=SPOT_2025,
                            start_ms=1748908800000 + 3_600_000 - 8_000).model_copy(update={"speed": 1})
    with AlertReceivers() as receivers:
        monkeypatch.setenv("ATE_TEST_TG_TOKEN", receivers.env["ATE_TEST_TG_TOKEN"])
        async with run_simulator(cfg, base_dir=REPO) as sim:
            await spend_weight_to_the_limit(sim.url("binance-spot", "rest"))
            store_path = tmp_path / "ate.db"
            store = Store(f"sqlite:///{store_path}")  # the run before the restart meets the 429
            before = BinanceClient(MarketKind.SPOT, BinanceUrls(sim.url("binance-spot", "rest"), ""),
                                   Credentials(ENV["E2E_BN_KEY"], ENV["E2E_BN_SECRET"]))
            PauseBook(store, lambda: 0).attach([before.limiter])
            before.rest.max_attempts = 1
            with pytest.raises(VenueUnknown):
                await before.server_time_ms()
            await before.close()
            until = before.limiter.paused_until_ms
            store.close()

            raw = engine_config_dict(sim, store_path, mode="shadow", monitor={
                "enabled": False, "alerts": receivers.config(poll_s=0.05),
                "heartbeat_url": f"{receivers.webhook.url}/ping", "heartbeat_interval_s": 0.2})
            engine = Engine(parse_config(raw), clock=ReplayAtWallSpeed(sim))
            mark = len(seen.requests)
            started_ms = time.time_ns() // 1_000_000
            starting = asyncio.ensure_future(engine.start())
            try:
                # while start-up waits, the operator is told why
                got = await asyncio.to_thread(receivers.webhook.wait_for,
                                              lambda b: b.get("kind") == "venue_paused", 5)
                assert got is not None and "start-up waits out binance_spot's HTTP 429" in got[2]["text"]
                beat = await asyncio.to_thread(receivers.webhook.wait_for,
                                               lambda b: "binance_spot ban" in b.get("raw", ""), 5)
                assert beat is not None and beat[1] == "/ping/fail"
                assert beat[2]["raw"].startswith("DEGRADED: engine starting: waiting for binance_spot ban until ")
                assert not starting.done()
                await asyncio.wait_for(starting, 60)
                spot = [(t, p, s) for t, p, s in seen.requests[mark:] if p.startswith("/api/v3")]
                assert spot and min(t for t, _, _ in spot) >= until, "a request went out inside the pause"
                assert {s for _, _, s in spot} == {200}  # no 429 again, no 418
                assert engine.clients["binance"].rest.status_counts.get(418) is None
                # the wait is in the metrics too, under names the naming lint accepts
                ops = engine.observer.figures()
                assert ops["venues"]["binance_spot"]["throttled_s"] >= (until - started_ms) / 1000 - 0.05
                assert ops["venues"]["binance_spot"]["windows"]["weight_1M"]["limit"] == 6000
                assert set(ops["clock_skew_ms"]) == {"binance", "binance_usdm", "backpack"}
                snap = await StoreView(engine.store, recorder=engine.recorder).metrics_snapshot()
                fams = {f.name: f for f in text_string_to_metric_families(Exposition().render(snap).decode())}
                assert lint(fams) == []
                [throttled] = [x for x in fams["ate_venue_throttled_seconds"].samples
                               if x.labels == {"venue": "binance_spot"}]
                assert throttled.value >= (until - started_ms) / 1000 - 0.05
            finally:
                await engine.stop()


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
