"""Alert path figures: how long from an event written to the store (by any process) to its arrival at a
local webhook and a local Telegram Bot API receiver, through the feed and the notifier; and what the
dead-man costs per market-data message (it is called for every book, candle and mark).

    .venv/bin/python bench/bench_monitor_alerts.py [--events 200] [--poll 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "monitor"))  # the local receivers

from alert_receivers import AlertReceivers  # noqa: E402

from ate.model import EngineEvent, Severity  # noqa: E402
from ate.monitor.alert_feed import AlertFeed  # noqa: E402
from ate.monitor.alerts import Notifier  # noqa: E402
from ate.monitor.deadman import DeadMan  # noqa: E402
from ate.store import Store  # noqa: E402


async def alert_latency(events: int, poll_s: float) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp, AlertReceivers() as rx:
        store = Store(f"sqlite:///{tmp}/ate.db")
        notifier = Notifier.from_config(rx.alerts_config(poll_s=poll_s, min_interval_s=0, max_per_minute=10_000,
                                                         queue_size=10_000), rx.env)
        feed = AlertFeed(store, notifier, poll_s=poll_s)
        feed.prime()
        notifier.start()
        feed.start()
        written: dict[str, float] = {}
        for i in range(events):
            text = f"event {i}"
            written[text] = time.monotonic()
            store.add_event(EngineEvent(i, "kill_switch", text, Severity.CRITICAL))
            await asyncio.sleep(poll_s / 7)  # spread over the poll period
        await asyncio.to_thread(rx.webhook.wait_for, lambda b: b.get("text") == f"event {events - 1}", 30)
        await asyncio.to_thread(rx.telegram.wait_for, lambda b: b.get("text", "").endswith(f"event {events - 1}"), 30)
        await feed.stop()
        await notifier.stop()
        store.close()
        hook = [t - written[b["text"]] for t, _, b in rx.webhook.messages]
        tg = [t - written[b["text"].split(": ", 1)[1]] for t, _, b in rx.telegram.messages]
        return hook, tg


def deadman_cost(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/ate.db")
        dead = DeadMan(store, None, ["binance", "binance_usdm", "backpack"])
        venues = ("binance", "binance_usdm", "backpack")
        t0 = time.perf_counter()
        for i in range(n):
            dead.market_data(venues[i % 3])
        cost = (time.perf_counter() - t0) / n
        store.close()
        return cost


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--poll", type=float, default=0.5)
    args = ap.parse_args()
    hook, tg = asyncio.run(alert_latency(args.events, args.poll))
    for name, xs in (("webhook", hook), ("telegram", tg)):
        xs = sorted(xs)
        print(f"event -> {name}: n={len(xs)} median {statistics.median(xs) * 1000:.0f} ms, "
              f"p99 {xs[int(len(xs) * 0.99) - 1] * 1000:.0f} ms, max {xs[-1] * 1000:.0f} ms "
              f"(feed poll {args.poll:g} s)")
    print(f"dead-man per market-data message: {deadman_cost(1_000_000) * 1e9:.0f} ns")


if __name__ == "__main__":
    main()
