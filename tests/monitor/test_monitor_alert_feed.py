"""The one alert path: whatever is written to the store's events table — by the risk layer, the ledger,
the venue watch, or another process such as `ate kill` — reaches a local webhook and a local Telegram Bot
API receiver; the cursor survives restarts (nothing repeated, nothing lost)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from alert_receivers import AlertReceivers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "foundation"))
from test_store_postgres import pg_url  # noqa: E402, F401 - the throwaway PostgreSQL cluster fixture

from ate.model import EngineEvent, Severity, TradingState  # noqa: E402
from ate.monitor.alert_feed import CURSOR_KEY, AlertFeed  # noqa: E402
from ate.monitor.alerts import Notifier  # noqa: E402
from ate.risk.daily import DailyLossTracker  # noqa: E402
from ate.risk.state import TradingStateKeeper  # noqa: E402
from ate.store import Store  # noqa: E402

NOW_MS = 1_773_144_000_000


@pytest.fixture
def receivers():
    with AlertReceivers() as r:
        yield r


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'ate.db'}")
    yield s
    s.close()


async def running_feed(store: Store, receivers: AlertReceivers, **kw) -> AlertFeed:
    notifier = Notifier.from_config(receivers.alerts_config(**kw), receivers.env)
    feed = AlertFeed(store, notifier, poll_s=0.05)
    await asyncio.to_thread(feed.prime)
    notifier.start()
    feed.start()
    return feed


async def stop(feed: AlertFeed) -> None:
    await feed.stop()
    await feed.notifier.drain()
    await feed.notifier.stop()


async def test_ate_kill_from_another_process_reaches_both_receivers(tmp_path, store, receivers):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"mode": "paper", "store": {"url": store.url},
                               "kill_switch": {"file": str(tmp_path / "EMERGENCY_STOP")}}))
    feed = await running_feed(store, receivers)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "ate.cli", "kill", "--reason",
                                                "operator drill", "--config", str(cfg), env=env,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    written = time.monotonic()
    hook, tg = await receivers.both("trading_state", "HALTED", timeout_s=5)
    await stop(feed)
    assert hook["severity"] == "critical" and "by cli: operator drill" in hook["text"]
    assert tg["text"] == "[ate] CRITICAL trading_state: ACTIVE -> HALTED by cli: operator drill"
    arrived = receivers.webhook.wait_for(lambda b: b.get("kind") == "trading_state", 0)[0]
    assert arrived - written < 5


async def test_risk_layer_writers_and_external_events_alert_by_kind(store, receivers):
    feed = await running_feed(store, receivers)
    clock = lambda: NOW_MS  # noqa: E731
    daily = DailyLossTracker(store, Decimal("300"), clock)
    daily.update(Decimal("10000"))
    daily.update(Decimal("9650"))  # 350 lost today against a 300 limit
    TradingStateKeeper(store, clock).set(TradingState.HALTED, "risk", "daily loss limit")
    for kind, text in (("external_withdrawal", "withdrawal of 500 USDT on binance"),
                       ("liquidation", "binance_usdm BTCUSDT position liquidated"),
                       ("module_status", "bitvol OK"), ("reconciliation", "corrected 1 fill")):
        store.add_event(EngineEvent(NOW_MS, kind, text, Severity.WARNING if kind != "module_status" else
                                    Severity.INFO, {"module": "bitvol"} if kind == "module_status" else {}))
    hook, _ = await receivers.both("risk_breach", "daily loss 350")
    assert hook["severity"] == "critical" and "limit 300" in hook["text"]
    await receivers.both("trading_state", "HALTED by risk: daily loss limit")
    await receivers.both("external_withdrawal", "500 USDT")
    await receivers.both("liquidation", "BTCUSDT")
    await receivers.both("reconciliation", "corrected 1 fill")
    await stop(feed)
    assert "module_status" not in [b.get("kind") for _, _, b in receivers.webhook.messages]
    assert feed.seen_by_kind["external_withdrawal"] == 1 and feed.seen_by_kind["module_status"] == 1


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ate.db'}"
    return request.getfixturevalue("pg_url")  # a throwaway cluster (skips where none can be started)


async def test_cursor_survives_restart_nothing_repeated_nothing_lost(store_url, receivers):
    path = store_url
    store = Store(path)
    store.add_event(EngineEvent(NOW_MS, "risk_breach", "history before alerts existed", Severity.CRITICAL))
    feed = await running_feed(store, receivers)
    store.add_event(EngineEvent(NOW_MS, "kill_switch", "kill switch activate by api", Severity.CRITICAL))
    await receivers.both("kill_switch", "activate")
    await stop(feed)
    store.add_event(EngineEvent(NOW_MS, "kill_switch", "kill switch resume by cli", Severity.WARNING))  # while down
    cursor = store.get_state(CURSOR_KEY)
    store.close()

    store = Store(path)  # the restart
    feed = await running_feed(store, receivers)
    await receivers.both("kill_switch", "resume by cli")
    await stop(feed)
    store.close()
    texts = [b["text"] for _, _, b in receivers.webhook.messages]
    assert texts == ["kill switch activate by api", "kill switch resume by cli"]
    assert feed.cursor == cursor + 1
