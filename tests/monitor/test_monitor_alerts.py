"""Alert delivery to local receivers: Telegram Bot API format, generic webhook, dedup, rate limit, bounds."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from monitor_harness import Receiver, free_port_url

from ate.config.models import AlertsConfig
from ate.model import EngineEvent, Severity
from ate.monitor.alerts import Alert, Notifier, WebhookSink

BOT_TOKEN = "123456:planted-bot-token"  # noqa: S105 - test value


class TickClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_telegram_and_webhook_formats():
    receiver = Receiver()
    async with receiver as base:
        cfg = AlertsConfig(telegram_bot_token_env="TG_TOKEN", telegram_chat_id="-100200", webhook_url=f"{base}/hook",
                           telegram_api_base=base)
        notifier = Notifier.from_config(cfg, {"TG_TOKEN": BOT_TOKEN})
        notifier.start()
        assert notifier.alert(Alert("kill_switch", "HALTED by operator@127.0.0.1", Severity.CRITICAL))
        await notifier.drain()
        await notifier.stop()
    (m1, p1, b1), (m2, p2, b2) = receiver.pings
    assert (m1, p1) == ("POST", f"/bot{BOT_TOKEN}/sendMessage")
    assert json.loads(b1) == {"chat_id": "-100200", "text": "[ate] CRITICAL kill_switch: HALTED by operator@127.0.0.1"}
    assert (m2, p2) == ("POST", "/hook")
    body = json.loads(b2)
    assert (body["kind"], body["severity"], body["text"]) == ("kill_switch", "critical", "HALTED by operator@127.0.0.1")
    assert BOT_TOKEN not in repr(notifier.sinks)
    assert notifier.sent == 2 and notifier.failed == 0


async def test_dedup_and_rate_limit_per_kind_with_injected_clock():
    clock = TickClock()
    receiver = Receiver()
    async with receiver as base:
        notifier = Notifier([WebhookSink(base)], min_interval_s=60, max_per_minute=2, clock=clock,
                            min_interval_by_kind={"trading_state": 0})
        notifier.start()
        assert notifier.alert(Alert("venue_error", "binance 5xx", key="binance"))
        assert not notifier.alert(Alert("venue_error", "binance 5xx again", key="binance"))  # same key
        assert notifier.alert(Alert("venue_error", "backpack 5xx", key="backpack"))
        assert not notifier.alert(Alert("venue_error", "bybit 5xx", key="bybit"))  # 3rd of this kind in a minute
        assert notifier.alert(Alert("emergency_action", "level 2"))  # another kind has its own budget
        # CRITICAL: deduplicated, but never rate limited
        assert notifier.alert(Alert("venue_error", "binance banned", Severity.CRITICAL, key="ban"))
        assert not notifier.alert(Alert("venue_error", "binance banned", Severity.CRITICAL, key="ban"))
        # a kind with no dedup window: every transition is news
        assert notifier.alert(Alert("trading_state", "ACTIVE -> HALTED", key="s"))
        assert notifier.alert(Alert("trading_state", "HALTED -> ACTIVE", key="s"))
        clock.t += 61
        assert notifier.alert(Alert("venue_error", "binance still failing", key="binance"))
        await notifier.drain()
        await notifier.stop()
    assert [json.loads(b)["text"] for _, _, b in receiver.pings] == [
        "binance 5xx", "backpack 5xx", "level 2", "binance banned", "ACTIVE -> HALTED", "HALTED -> ACTIVE",
        "binance still failing"]
    assert notifier.suppressed == 3
    assert notifier.sent_by_kind == {"venue_error": 4, "emergency_action": 1, "trading_state": 2}


async def test_event_mapping():
    receiver = Receiver()
    async with receiver as base:
        notifier = Notifier([WebhookSink(base)])
        notifier.start()
        assert notifier.event(EngineEvent(1, "reconciliation", "corrected 2 fills", Severity.WARNING))
        assert notifier.event(EngineEvent(2, "emergency_action", "level 3: REDUCE 50 %", Severity.WARNING,
                                          {"level": 3}))
        assert notifier.event(EngineEvent(3, "trading_state", "ACTIVE -> HALTED by operator", Severity.CRITICAL))
        assert notifier.event(EngineEvent(4, "risk_breach", "daily loss 3.2 % > 3 %", Severity.CRITICAL))
        assert not notifier.event(EngineEvent(5, "module_status", "bitvol OK"))
        assert notifier.event(EngineEvent(6, "strange", "store write failed", Severity.CRITICAL))
        await notifier.drain()
        await notifier.stop()
    assert [json.loads(b)["kind"] for _, _, b in receiver.pings] == [
        "reconciliation", "emergency_action", "trading_state", "risk_breach", "strange"]


async def test_failures_are_counted_and_never_raise():
    async with Receiver(status=502) as base:
        notifier = Notifier([WebhookSink(base),
                             WebhookSink(
                                 await free_port_url())])
        notifier.start()
        assert notifier.alert(Alert("halt", "x"))
        await notifier.drain()
        await notifier.stop()
    assert (notifier.sent, notifier.failed) == (0, 2)


async def test_slow_receiver_never_blocks_queue_is_bounded_and_critical_never_dropped():
    release = asyncio.Event()
    got = []

    async def hang(request: web.Request) -> web.Response:
        got.append(await request.json())
        await release.wait()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    notifier = Notifier([WebhookSink(f"http://{host}:{port}/hook")], min_interval_s=0, max_per_minute=100,
                        queue_size=3)
    notifier.start()
    accepted = [notifier.alert(Alert("venue_error", f"e{i}", key=str(i))) for i in range(10)]
    # alert() returned at once for all ten while the receiver hangs; the queue kept 3, the rest dropped
    assert accepted == [True] * 3 + [False] * 7
    assert notifier.dropped == 7
    while not got:
        await asyncio.sleep(0)
    assert notifier.alert(Alert("venue_error", "after one left the queue", key="x"))
    assert not notifier.alert(Alert("venue_error", "queue full again", key="y"))
    # the queue is full, yet a CRITICAL alert is kept (in its place: the operator reads a timeline)
    assert notifier.alert(Alert("kill_switch", "HALTED", Severity.CRITICAL))
    release.set()
    await notifier.drain()
    await notifier.stop()
    await runner.cleanup()
    assert [g["text"] for g in got] == ["e0", "e1", "e2", "after one left the queue", "HALTED"]
    assert notifier.dropped == 8


async def test_distinct_events_of_one_kind_and_venue_are_not_merged():
    receiver = Receiver()
    async with receiver as base:
        notifier = Notifier([WebhookSink(base)])
        notifier.start()
        for trade in ("t1", "t2"):  # two liquidations on one venue within the dedup window: both are news
            assert notifier.event(EngineEvent(1, "external_fill", f"binance_usdm:BTCUSDT SELL 0.003 ({trade})",
                                              Severity.CRITICAL, {"venue": "binance_usdm", "trade_id": trade}))
        assert not notifier.event(EngineEvent(2, "external_fill", "binance_usdm:BTCUSDT SELL 0.003 (t2)",
                                              Severity.CRITICAL, {"venue": "binance_usdm", "trade_id": "t2"}))
        await notifier.drain()
        await notifier.stop()
    assert len(receiver.pings) == 2


async def test_a_critical_delivery_is_retried_a_warning_is_not():
    statuses = iter([502, 503, 200, 502])
    got = []

    async def flaky(request: web.Request) -> web.Response:
        got.append((await request.json())["text"])
        return web.Response(status=next(statuses), text="")

    app = web.Application()
    app.router.add_post("/hook", flaky)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    notifier = Notifier([WebhookSink(f"http://{host}:{port}/hook")], retry_delay_s=0.01)
    notifier.start()
    assert notifier.alert(Alert("kill_switch", "HALTED", Severity.CRITICAL))
    await notifier.drain()
    assert notifier.alert(Alert("venue_paused", "binance paused 30 s", Severity.WARNING))
    await notifier.drain()
    await notifier.stop()
    await runner.cleanup()
    assert got == ["HALTED", "HALTED", "HALTED", "binance paused 30 s"]
    assert notifier.sent_by_kind == {"kill_switch": 1} and notifier.failed_by_kind == {"venue_paused": 1}
