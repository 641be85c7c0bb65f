"""An engine restarted inside a persisted 429 period or 418 ban, against the simulator, on hand-driven clocks (the
replay clock and the wall clock bans are counted on are the same manual clock: no sleeps).

While start-up waits the ban out, the operator sees it at once everywhere: `/api/status`, the dashboard
and the heartbeat say "waiting for binance_spot ban until <t>", one alert went out, and nothing reaches the
banned venue. Controls act on flags only: a kill is taken (and honoured once the engine runs), close-all is
refused until reconciliation has finished. When the ban ends start-up completes with no 418, and the
engine trades once resumed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
import pytest
from alert_receivers import BOT_TOKEN, TOKEN_ENV, AlertReceivers
from monitor_harness import TOKEN
from prom_lint import lint
from prometheus_client.parser import text_string_to_metric_families
from sim_requests import Seen, spend_weight_to_the_limit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))  # the engine's end-to-end harness
from engine_support import (  # noqa: E402
    BN_KEY,
    BN_SECRET,
    data_present,
    release_sleepers,
    settle,
    sim_config,
    sim_orders,
    world,
)

from ate.config import parse_config  # noqa: E402
from ate.engine import Engine  # noqa: E402
from ate.model import MarketKind  # noqa: E402
from ate.monitor.pauses import PauseBook  # noqa: E402
from ate.monitor.startup import CONNECTING, RUNNING  # noqa: E402
from ate.risk.killswitch import kill_file  # noqa: E402
from ate.risk.state import read_state  # noqa: E402
from ate.store import Store  # noqa: E402
from ate.venues.binance.client import BinanceClient, BinanceUrls  # noqa: E402
from ate.venues.credentials import Credentials  # noqa: E402
from ate.venues.errors import VenueUnknown  # noqa: E402

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(120)]

SMALL = {"binance-spot": {"USDT": "1000", "BTC": "0.002"}, "binance-usdm": {"USDT": "1000"},
         "backpack": {"USDC": "1000", "BTC": "0.002"}}
# The arbitrage is told the spread is free: it trades within minutes of market time once allowed to.
EAGER_ARB = {"arbitrage": {"net_threshold_bps": 0, "fee_a_bps": 0, "fee_b_bps": 0, "slippage_buffer_bps": 0,
                           "conversion_rate": 1.0}}
CANARY = {"initial_capital": 1000, "max_position_size": 0.02, "daily_loss_limit": 50}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MONITOR_TOKEN_ENV = "ATE_TEST_MONITOR_TOKEN"


async def earn_a_pause(sim, store_url: str, clock, code: int = 429) -> int:
    """The run before the restart: the IP's weight is spent, its next request meets the 429 (and, for a 418,
    another client on the IP ignores the wait) and the pause is persisted. Returns the pause's end (ms on
    `clock`, the wall clock of this test)."""
    await spend_weight_to_the_limit(sim.url("binance-spot"))
    store = Store(store_url)
    try:
        book = PauseBook(store, clock.now_ms, clock.now_ms)
        clients = [BinanceClient(MarketKind.SPOT, BinanceUrls(sim.url("binance-spot"), ""),
                                 Credentials(BN_KEY, BN_SECRET), clock=clock, pause_clock=clock)
                   for _ in range(1 if code == 429 else 2)]
        book.attach([c.limiter for c in clients])  # before any pause: the second client's limiter sends anyway
        for client in clients:
            client.rest.max_attempts = 1
            with pytest.raises(VenueUnknown, match="rate limited"):
                await client.server_time_ms()
            await client.close()
        assert clients[-1].rest.status_counts == {code: 1}
        return clients[-1].limiter.paused_until_ms
    finally:
        store.close()


@pytest.mark.parametrize(("code", "ban_s"), [(429, 60), (418, 120)])
async def test_restart_inside_a_ban_is_visible_at_once_and_controls_act_on_flags(tmp_path, monkeypatch, code, ban_s):
    with AlertReceivers() as receivers:
        monkeypatch.setenv(TOKEN_ENV, BOT_TOKEN)
        monkeypatch.setenv(MONITOR_TOKEN_ENV, TOKEN)
        monitor = {"enabled": True, "port": 0, "token_env": MONITOR_TOKEN_ENV, "control_per_minute": 600,
                   "alerts": receivers.config(poll_s=0.05), "heartbeat_url": f"{receivers.webhook.url}/ping",
                   "heartbeat_interval_s": 0.2}
        sections = {"monitor": monitor, "strategies": EAGER_ARB, "canary": CANARY}
        async with world(tmp_path, monkeypatch, mode="canary", sim_cfg=sim_config(balances=SMALL),
                         engine_sections=sections, start_engine=False) as (sim, _, drive, raw):
            seen = Seen(monkeypatch, now=sim.clock.now_ms)
            until = await earn_a_pause(sim, raw["store"]["url"], drive.clock, code)
            # a 429: the rest of the venue's weight window; a 418: its first ban, 2 minutes
            assert until - sim.clock.now_ms() == ban_s * 1000

            cfg = parse_config(raw)
            engine = Engine(cfg, clock=drive.clock, wall=drive.clock)
            mark = len(seen.requests)
            starting = asyncio.ensure_future(engine.start())
            try:
                async with aiohttp.ClientSession() as http:
                    assert await settle(lambda: engine.monitor is not None and engine.controls is not None)
                    base = engine.monitor.url

                    # /api/status answers while start-up is blocked, and says what it waits for and until when
                    async with http.get(f"{base}/api/status") as r:
                        assert r.status == 200
                        status = await r.json()
                    assert not starting.done()
                    waiting = (f"waiting for binance_spot ban until 2026-03-17 00:0{2 + ban_s // 60}:00 UTC "
                               f"(HTTP {code}, {ban_s} s left)")
                    assert status["phase"] == CONNECTING and status["detail"] == waiting
                    assert status["waiting_for"] == [{"venue": "binance_spot", "until_ms": until,
                                                      "reason": f"HTTP {code}", "left_s": float(ban_s)}]
                    assert status["ready"] is False and status["reasons"] == [f"engine starting: {waiting}"]
                    assert status["health"] == f"DEGRADED: engine starting: {waiting}"
                    # the dashboard page and its data answer too, with the same line
                    async with http.get(f"{base}/") as r:
                        assert r.status == 200 and 'id="startup"' in await r.text()
                    async with http.get(f"{base}/api/dashboard") as r:
                        page = await r.json()
                    assert page["metrics"]["engine"]["startup"]["detail"] == waiting
                    # the heartbeat carries it, and one alert says start-up waits
                    beat = await asyncio.to_thread(receivers.webhook.wait_for,
                                                   lambda b: "binance_spot ban" in b.get("raw", ""), 5)
                    assert beat is not None and beat[1] == "/ping/fail"
                    assert beat[2]["raw"] == f"DEGRADED: engine starting: {waiting}"
                    hook, _ = await receivers.both("venue_paused", f"start-up waits out binance_spot's HTTP {code}")
                    assert "no request is sent before" in hook["text"]
                    # `ate status` (the store) sees a starting engine and why
                    hb = engine.store.get_state("engine.heartbeat")
                    assert hb["running"] is True and hb["phase"] == waiting

                    # controls act on flags only: close-all is refused with the reason, kill is taken at once
                    async with http.post(f"{base}/api/close-all", headers=AUTH) as r:
                        assert r.status == 409
                        refused = (await r.json())["detail"]
                    assert refused.startswith(f"close-all refused: the engine is starting ({waiting})")
                    assert "Kill halts trading now" in refused
                    async with http.post(f"{base}/api/kill", headers=AUTH, json={"reason": "hold during ban"}) as r:
                        assert r.status == 200
                        assert (await r.json())["trading_state"]["state"] == "HALTED"
                    assert read_state(engine.store)["why"] == "hold during ban"
                    assert kill_file(cfg.kill_switch).exists()
                    await receivers.both("trading_state", "ACTIVE -> HALTED")
                    assert not starting.done()
                    # nothing reached the banned venue while waiting
                    assert seen.spot(mark) == []

                    # the ban ends (the test moves both clocks): start-up completes, no 418, nothing inside it
                    await drive.step(ban_s * 1000)
                    await asyncio.wait_for(starting, 60)
                    drive.engine = engine
                    sent = seen.spot(mark)
                    assert sent and min(t for t, _, _ in sent) >= until
                    assert [r for r in seen.requests[mark:] if r[2] in (418, 429)] == []
                    assert engine.clients["binance"].rest.status_counts.get(418) is None
                    async with http.get(f"{base}/api/status") as r:
                        status = await r.json()
                    assert (status["phase"], status["detail"], status["waiting_for"]) == (RUNNING, RUNNING, [])
                    # the wait is in the metrics, under names the naming lint accepts
                    ops = engine.observer.figures()
                    assert ops["venues"]["binance_spot"]["windows"]["weight_1M"]["limit"] == 6000
                    assert set(ops["clock_skew_ms"]) == {"binance", "binance_usdm", "backpack"}
                    async with http.get(f"{base}/metrics") as r:
                        fams = {f.name: f for f in text_string_to_metric_families(await r.text())}
                    assert lint(fams) == []
                    [throttled] = [x for x in fams["ate_venue_throttled_seconds"].samples
                                   if x.labels == {"venue": "binance_spot"}]
                    assert throttled.value == ban_s

                    # the kill taken during start-up holds: HALTED, nothing sent while it does
                    assert engine.core.keeper.state.value == "HALTED"
                    await drive.run(5 * 60_000, 15_000)
                    assert sim_orders(sim) == []
                    # once resumed the engine trades (the arbitrage sends real orders)
                    async with http.post(f"{base}/api/resume", headers=AUTH) as r:
                        assert r.status == 200 and (await r.json())["trading_state"]["state"] == "ACTIVE"
                    assert not kill_file(cfg.kill_switch).exists()
                    for _ in range(240):
                        await drive.step(15_000)
                        if sim_orders(sim):
                            break
                    assert sim_orders(sim), "no order within an hour of market time after the resume"
                    # and close-all, refused during start-up, is accepted once the engine runs
                    async with http.post(f"{base}/api/close-all", headers=AUTH) as r:
                        assert r.status == 200 and (await r.json())["trading_state"]["state"] == "HALTED"
                # exactly one venue_paused alert: the restart's (the pause before it was history when alerts began)
                assert [b for _, _, b in receivers.webhook.messages if b.get("kind") == "venue_paused"] == [hook]
            finally:
                release_sleepers(drive.clock)
                if not starting.done():
                    starting.cancel()
                await asyncio.gather(starting, return_exceptions=True)
                await engine.stop()


async def test_a_clock_sync_waiting_out_a_ban_measures_from_when_its_request_left(tmp_path, monkeypatch):
    """A restart's first request is the clock sync: timed from before the 60 s wait, it read the local clock
    as 30 s behind the venue and every signed request after was refused (ClockSkewError)."""
    async with world(tmp_path, monkeypatch, start_engine=False) as (sim, _, drive, raw):
        until = await earn_a_pause(sim, raw["store"]["url"], drive.clock)
        store = Store(raw["store"]["url"])
        client = BinanceClient(MarketKind.SPOT, BinanceUrls(sim.url("binance-spot"), ""),
                               Credentials(BN_KEY, BN_SECRET), clock=drive.clock, pause_clock=drive.clock)
        PauseBook(store, drive.clock.now_ms, drive.clock.now_ms).attach([client.limiter])
        try:
            syncing = asyncio.ensure_future(client.sync_clock())
            assert await settle(lambda: bool(drive.clock._sleepers))  # waiting out the ban, nothing sent
            await drive.step(until - sim.clock.now_ms())
            # the simulator and the client share one clock: the true offset is 0
            assert await asyncio.wait_for(syncing, 10) == 0
            assert client.server_clock.rtt_ms == 0
        finally:
            await client.close()
            store.close()
