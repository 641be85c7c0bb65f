"""A small real engine view for the monitor tests: MetricsRecorder + Store on SQLite with recorded data,
and store-backed controls standing in for the risk layer's kill switch."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from pathlib import Path

from aiohttp import web

from ate.config.models import MonitorConfig
from ate.config.risk import KillSwitchConfig
from ate.model import EngineEvent, Fill, Order, OrderStatus, OrderType, Severity, Side, TimeInForce
from ate.monitor.controls import RiskControls
from ate.monitor.recorder import MetricsRecorder
from ate.risk.killswitch import KillSwitch
from ate.risk.state import TradingStateKeeper
from ate.store import Store
from ate.store.db import MARKS_KEY

NOW_MS = 1_773_144_000_000  # 2026-03-10 12:00 UTC
DAY_MS = 86_400_000
TOKEN = "tok-3b9f0c2e-operator"  # noqa: S105 - test token
PLANTED_SECRET = "PLANTED-venue-secret-7f31c9"  # noqa: S105 - must never be served


class ManualClock:
    def __init__(self, ms: int = NOW_MS) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


class EngineStandIn:
    """The engine's side of the operator controls: real risk-layer kill switch and trading state over the
    store; order cancellation marks the store's open orders CANCELED (there is no venue here)."""

    def __init__(self, store: Store, recorder: MetricsRecorder, clock: ManualClock, workdir: Path) -> None:
        self.store, self.recorder, self.clock = store, recorder, clock
        self.keeper = TradingStateKeeper(store, clock)
        self.kill_switch = KillSwitch(KillSwitchConfig(), self.keeper, cancel_all=self.cancel_all, workdir=workdir)
        self.reconciled = True
        self.controls = RiskControls(self.kill_switch, close_all=self.close_all, readiness=self.readiness)

    async def cancel_all(self) -> int:
        open_orders = self.store.orders(open_only=True)
        for order in open_orders:
            order.transition(OrderStatus.CANCELED, self.clock(), "kill switch")
            self.store.save_order(order)
        return len(open_orders)

    async def close_all(self, who: str) -> None:
        self.store.add_event(EngineEvent(self.clock(), "close_all", f"close-all requested by {who}"))

    async def readiness(self) -> tuple[bool, list[str]]:
        health = self.recorder.system_health()
        reasons = [f"stream {s} disconnected" for s, w in health["websocket"].items() if not w["connected"]]
        reasons += [f"stream {s} stale" for s, w in health["websocket"].items()
                    if w["last_message_age_s"] is None or w["last_message_age_s"] > 60]
        reasons += [f"venue {v} unreachable" for v, r in health["api_requests"].items()
                    if r["last_ok_age_s"] is None or r["last_ok_age_s"] > 300]
        if not self.reconciled:
            reasons.append("reconciliation not done")
        return not reasons, reasons


def record_history(store: Store, now_ms: int = NOW_MS, *, shadow: bool = False) -> None:
    """40 days of equity every 6 h (one deposit), positions, orders, fills, funding and events; `shadow`: in the
    hypothetical book a paper or shadow run keeps."""
    rng = random.Random(7)
    equity = Decimal("10000")
    start = now_ms - now_ms % DAY_MS - 40 * DAY_MS
    ts = start
    while ts <= now_ms:
        flows = Decimal("500") if ts == start + 20 * DAY_MS else Decimal(0)
        equity = (equity * Decimal(str(1 + rng.gauss(0.0005, 0.004)))).quantize(Decimal("0.01")) + flows
        store.add_equity(ts, equity, flows, shadow=shadow)
        ts += 6 * 3_600_000
    # positions are replayed from fills: 0.47 BTC spot and −0.5 BTC perp bought 40 days ago (before any daily
    # window), then 3 × 0.01 BTC spot today; marked at the engine's last marks
    store.add_fill(Fill("binance", "BTCUSDT", "held-spot", "ate-car-0", "v9", Side.BUY, Decimal("0.47"), Decimal("60000"),
                        Decimal(0), "USDT", False, start, "funding_carry"), shadow=shadow)
    store.add_fill(Fill("binance_usdm", "BTCUSDT", "held-perp", "ate-car-1", "v10", Side.SELL, Decimal("0.5"),
                        Decimal("60100"), Decimal(0), "USDT", False, start, "funding_carry"), shadow=shadow)
    store.set_state(MARKS_KEY, {"binance:BTCUSDT": "61000", "binance_usdm:BTCUSDT": "61010"}, now_ms)
    for i, status in enumerate([OrderStatus.NEW, OrderStatus.NEW, OrderStatus.FILLED]):
        order = Order(f"ate-dir-{i}", "binance", "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.01"),
                      Decimal("59000") + i, TimeInForce.GTC, strategy="directional", status=status,
                      created_ms=now_ms - (3 - i) * 60_000, updated_ms=now_ms - (3 - i) * 60_000)
        store.save_order(order, shadow=shadow)
    for i in range(3):
        store.add_fill(Fill("binance", "BTCUSDT", f"t{i}", "ate-dir-2", f"v{i}", Side.BUY, Decimal("0.01"),
                            Decimal("59002"), Decimal("0.059"), "USDT", False, now_ms - (3 - i) * 1000, "directional"),
                       shadow=shadow)
    for i, amount in enumerate(["12.5", "-2.25", "8"]):
        store.add_ledger(ts_ms=now_ms - (i + 1) * 8 * 3_600_000, kind="funding", amount=Decimal(amount), asset="USDT",
                         venue="binance_usdm", ref=f"f{i}", symbol="BTCUSDT", strategy="funding_carry",
                         shadow=shadow)
    store.add_event(EngineEvent(now_ms - 5000, "reconciliation", "corrected 1 order", Severity.WARNING,
                                {"order": "ate-dir-1", "api_secret": PLANTED_SECRET}))
    store.add_event(EngineEvent(now_ms - 4000, "module_status", "bitvol OK", data={"module": "bitvol", "status": "OK"}))


def fill_recorder(rec: MetricsRecorder, clock: ManualClock) -> None:
    for i in range(40):
        rec.request("binance", ok=i % 10 != 0)
        rec.request("backpack", ok=True)
        rec.latency(5.0 + i)
    rec.stream_status("binance:BTCUSDT@bookTicker", True)
    rec.stream_message("binance:BTCUSDT@bookTicker")
    rec.clock_skew("binance", -12.0)
    for name in ("bitvol", "lxvx", "garch", "kelly", "gamma", "emergency", "atr_supertrend", "multi_timeframe"):
        rec.module(name, "OK", {"values": {"x": 1.0}})
    rec.arbitrage_opportunity()
    rec.arbitrage_attempt(filled=True, net_pnl_usd=2.0, buy_notional_usd=1000.0, expected_bps=23.0,
                          realised_bps=20.0)
    rec.carry_book("BTC", 1.0, -0.97, 1.0, 61000.0)


def monitor_config(**kw) -> MonitorConfig:
    base = {"port": 0, "token_env": "ATE_TEST_MONITOR_TOKEN", "control_per_minute": 600, "stream_interval_s": 0.1}
    return MonitorConfig(**(base | kw))


class Receiver:
    """A healthchecks.io-style endpoint on 127.0.0.1:0 that records pings."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.pings: list[tuple[str, str, str]] = []
        self.got = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(self.app)

    async def handle(self, request: web.Request) -> web.Response:
        self.pings.append((request.method, request.path, await request.text()))
        self.got.set()
        return web.Response(status=self.status, text="OK")

    async def __aenter__(self) -> str:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()


async def free_port_url() -> str:
    """A URL nothing listens on (bound then closed)."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return f"http://127.0.0.1:{port}"
