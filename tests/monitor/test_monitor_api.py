"""Operator API over a real server (uvicorn in the test's event loop) and a real store-backed view."""

from __future__ import annotations

import signal
from decimal import Decimal

import aiohttp
import pytest
from monitor_harness import NOW_MS, PLANTED_SECRET, TOKEN, monitor_config

from ate.model import EngineEvent, TradingState
from ate.monitor.api import RateLimiter
from ate.monitor.server import start_monitor
from ate.monitor.view import StoreView
from ate.risk.state import read_state, write_state

READ_PATHS = ["/api/metrics", "/api/orders", "/api/orders?open_only=true", "/api/trades", "/api/events",
              "/api/events?kind=audit", "/api/signals", "/api/dashboard", "/healthz", "/readyz", "/metrics",
              "/", "/docs", "/openapi.json", "/static/dashboard.js"]


async def get(url: str, path: str, **kw) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url + path, **kw) as r:
        return r.status, await r.text()


async def post(url: str, path: str, token: str | None = None, json=None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as s, s.post(url + path, headers=headers, json=json) as r:
        return r.status, await r.json()


async def test_metrics_structure(monitor):
    handle, *_ = monitor
    assert handle.host == "127.0.0.1" and handle.port > 0
    async with aiohttp.ClientSession() as s, s.get(handle.url + "/api/metrics") as r:
        m = await r.json()
    h = m["system_health"]
    assert h["source"] == "engine"
    assert h["api_error_rate"]["binance"] == {"5m": 0.1, "24h": 0.1}
    assert h["api_error_rate"]["backpack"] == {"5m": 0.0, "24h": 0.0}
    assert h["trade_latency_ms"]["p50"] == pytest.approx(24.5)
    assert h["trade_latency_ms"]["p99"] == pytest.approx(43.61)  # linear interpolation over 5..44 ms
    assert h["websocket"]["binance:BTCUSDT@bookTicker"] == {"connected": True, "last_message_age_s": 0.0}
    assert sorted(h["module_status"]) == sorted(["bitvol", "lxvx", "garch", "kelly", "gamma", "emergency",
                                                 "atr_supertrend", "multi_timeframe"])
    assert h["clock_skew_ms"] == {"binance": -12.0}
    assert h["trading_state"]["state"] == "ACTIVE"
    sp = m["strategy_performance"]
    assert sp["arbitrage"]["opportunities_detected"] == 1
    assert sp["arbitrage"]["trades_executed"] == 1
    assert sp["arbitrage"]["average_profit_bps"] == pytest.approx(20.0)
    assert sp["arbitrage"]["slippage_bps"] == pytest.approx(3.0)
    assert sp["delta_neutral"]["current_delta"] == pytest.approx(0.03)
    assert sp["delta_neutral"]["target_delta"] == 0.0
    assert sp["delta_neutral"]["hedge_effectiveness"] is None  # fewer than 48 hourly samples
    assert sp["delta_neutral"]["funding_captured_usd"] == pytest.approx(18.25)
    perf = sp["performance"]
    assert isinstance(perf["sharpe_ratio_rolling"], float)
    assert isinstance(perf["daily_pnl_usd"], float)
    assert perf["win_rate_pct"] == 100.0
    pos = {(p["venue"], p["symbol"]): p for p in m["current_positions"]}
    # replayed from the fills: 0.47 at 60000 and 3 × 0.01 at 59002, marked at the engine's last mark
    assert Decimal(pos[("binance", "BTCUSDT")]["qty"]) == Decimal("0.5")
    assert Decimal(pos[("binance", "BTCUSDT")]["unrealized_pnl"]) == (Decimal("61000") - Decimal("59940.12")) / 2
    assert Decimal(pos[("binance_usdm", "BTCUSDT")]["qty"]) == Decimal("-0.5")


async def test_read_endpoints(monitor):
    handle, view, rec, _ = monitor
    async with aiohttp.ClientSession() as s:
        async with s.get(handle.url + "/api/orders?open_only=true") as r:
            orders = await r.json()
        assert [o["client_order_id"] for o in orders] == ["ate-dir-1", "ate-dir-0"]
        assert orders[0]["price"] == "59001"
        async with s.get(handle.url + "/api/trades?limit=2") as r:
            trades = await r.json()
        assert [t["trade_id"] for t in trades] == ["t2", "t1"]
        async with s.get(handle.url + "/api/events?kind=reconciliation") as r:
            events = await r.json()
        assert events[0]["message"] == "corrected 1 order"
        assert events[0]["data"] == {"order": "ate-dir-1", "api_secret": "***"}
        async with s.get(handle.url + "/api/signals") as r:
            signals = await r.json()
        assert signals["garch"] == {"status": "OK", "output": {"values": {"x": 1.0}}}
        async with s.get(handle.url + "/api/orders?limit=0") as r:
            assert r.status == 422
        async with s.get(handle.url + "/api/dashboard") as r:
            dash = await r.json()
        assert len(dash["equity"]["equity"]) > 100
        assert len(dash["equity"]["daily_pnl"]) == 30


async def test_probes(monitor):
    handle, view, rec, controls = monitor
    assert await get(handle.url, "/healthz") == (200, '{"status":"alive"}')
    status, body = await get(handle.url, "/readyz")
    assert status == 200, body
    controls.reconciled = False
    rec.stream_status("backpack:depth", False)
    async with aiohttp.ClientSession() as s, s.get(handle.url + "/readyz") as r:
        assert r.status == 503
        assert (await r.json())["reasons"] == ["stream backpack:depth disconnected", "stream backpack:depth stale",
                                               "reconciliation not done"]


async def test_control_requires_token_and_is_audited(monitor, store):
    handle, *_ = monitor
    assert (await post(handle.url, "/api/kill"))[0] == 401
    assert (await post(handle.url, "/api/kill", token="wrong"))[0] == 401
    assert (await post(handle.url, "/api/kill", token=TOKEN[:-1]))[0] == 401
    assert (await post(handle.url, "/api/resume", token=""))[0] == 401
    assert (await post(handle.url, "/api/kill", token="nope"))[0] == 401
    status, body = await post(handle.url, "/api/kill", token=TOKEN, json={"reason": "fat finger on venue"})
    assert status == 200
    assert body["trading_state"]["state"] == "HALTED"
    async with aiohttp.ClientSession() as s, s.get(handle.url + "/api/metrics") as r:
        state = (await r.json())["system_health"]["trading_state"]
    assert (state["state"], state["why"], state["who"]) == ("HALTED", "fat finger on venue", "operator@127.0.0.1")
    assert read_state(store)["state"] == "HALTED"  # persisted by the risk layer
    assert store.orders(open_only=True) == []  # the kill switch cancelled the open orders
    status, body = await post(handle.url, "/api/close-all", token=TOKEN)
    assert (status, body["action"]) == (200, "close-all")
    status, body = await post(handle.url, "/api/resume", token=TOKEN)
    assert (status, body["trading_state"]["state"]) == (200, "ACTIVE")
    assert (await post(handle.url, "/api/kill", token=TOKEN, json={"reason": ""}))[0] == 422
    assert (await post(handle.url, "/api/kill", token=TOKEN, json={"other": 1}))[0] == 422

    audit = store.events(kind="audit", limit=50)
    outcomes = [(e.data["action"], e.data["outcome"]) for e in reversed(audit)]
    assert outcomes == [("kill", "refused: missing token"), ("kill", "refused: wrong token"),
                        ("kill", "refused: wrong token"), ("resume", "refused: missing token"),
                        ("kill", "refused: wrong token"), ("kill", "done"), ("close-all", "done"),
                        ("resume", "done"), ("kill", "refused: invalid body"), ("kill", "refused: invalid body")]
    assert all(e.data["who"] == "operator@127.0.0.1" for e in audit)
    assert TOKEN not in repr([(e.message, e.data) for e in audit])


async def test_control_disabled_without_token_env(engine_view):
    view, *_ = engine_view
    handle = await start_monitor(view, monitor_config(), env={})
    try:
        status, body = await post(handle.url, "/api/kill", token=TOKEN)
        assert status == 403 and "ATE_TEST_MONITOR_TOKEN" in body["detail"]
        assert (await get(handle.url, "/api/metrics"))[0] == 200
    finally:
        await handle.stop()


async def test_store_only_view_is_read_only(store, clock):
    handle = await start_monitor(StoreView(store, clock=clock), monitor_config(),
                                 env={"ATE_TEST_MONITOR_TOKEN": TOKEN})
    try:
        status, body = await post(handle.url, "/api/kill", token=TOKEN)
        assert status == 409 and "read-only" in body["detail"]
        async with aiohttp.ClientSession() as s:
            async with s.get(handle.url + "/api/metrics") as r:
                m = await r.json()
            async with s.get(handle.url + "/readyz") as r:
                assert r.status == 503
                assert (await r.json())["reasons"] == ["engine not running: read-only view of the store"]
            async with s.get(handle.url + "/api/signals") as r:
                assert (await r.json()) == {"bitvol": {"status": "OK", "output": {"module": "bitvol", "status": "OK"}}}
            async with s.get(handle.url + "/api/metrics") as r:
                assert (await r.json())["system_health"]["module_status"]["bitvol"] == "OK"
        assert m["system_health"]["source"] == "store"
        assert m["system_health"]["trading_state"]["state"] == "ACTIVE"
        assert m["strategy_performance"]["delta_neutral"]["funding_captured_usd"] == pytest.approx(18.25)
        assert m["strategy_performance"]["arbitrage"]["trades_executed"] is None
        assert len(m["current_positions"]) == 2
        assert store.events(kind="audit")[0].data["outcome"].startswith("refused: engine not running")
        write_state(store, TradingState.HALTED, "emergency", "level 5", NOW_MS)  # e.g. `ate kill`
        async with aiohttp.ClientSession() as s, s.get(handle.url + "/api/metrics") as r:
            state = (await r.json())["system_health"]["trading_state"]
        assert state == {"state": "HALTED", "who": "emergency", "why": "level 5", "ts_ms": NOW_MS}
    finally:
        await handle.stop()


async def test_control_rate_limited(engine_view):
    view, *_ = engine_view
    handle = await start_monitor(view, monitor_config(control_per_minute=3, failed_auth_per_minute=3),
                                 env={"ATE_TEST_MONITOR_TOKEN": TOKEN})
    try:
        statuses = [(await post(handle.url, "/api/kill", token="guess"))[0] for _ in range(5)]
        assert statuses == [401, 401, 401, 429, 429]
        # the right token is never held up by failures (issue 14: 8 bad POSTs locked the operator out)
        assert [(await post(handle.url, "/api/kill", token=TOKEN))[0] for _ in range(4)] == [200, 200, 200, 429]
    finally:
        await handle.stop()


async def test_planted_secrets_never_served(monitor):
    handle, view, *_ = monitor
    await view.record_event(EngineEvent(NOW_MS, "venue_error", "auth failed", data={"secret": PLANTED_SECRET,
                                                                                     "nested": {"token": TOKEN}}))
    await post(handle.url, "/api/kill", token=TOKEN)
    for path in READ_PATHS:
        status, text = await get(handle.url, path)
        assert status in (200, 503), path
        assert PLANTED_SECRET not in text and TOKEN not in text, path


async def test_openapi_lists_endpoints(monitor):
    handle, *_ = monitor
    async with aiohttp.ClientSession() as s, s.get(handle.url + "/openapi.json") as r:
        spec = await r.json()
    assert {"/api/metrics", "/api/orders", "/api/trades", "/api/events", "/api/signals", "/healthz", "/readyz",
            "/api/kill", "/api/resume", "/api/close-all"} <= set(spec["paths"])
    status, html = await get(handle.url, "/docs")
    assert status == 200 and "swagger" in html.lower()


async def test_stop_ends_live_streams(monitor):
    handle, *_ = monitor
    async with aiohttp.ClientSession() as s, s.get(handle.url + "/api/stream") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        first = await r.content.readuntil(b"\n\n")
        assert first.startswith(b"data: {")
        await handle.stop()
        assert await r.content.read() is not None  # stream closes instead of hanging the shutdown


def test_rate_limiter_refills_over_time():
    now = [0.0]
    limiter = RateLimiter(6, clock=lambda: now[0])
    assert [limiter.allow() for _ in range(7)] == [True] * 6 + [False]
    now[0] += 9.9  # 6 per minute = one per 10 s
    assert not limiter.allow()
    now[0] += 0.1
    assert limiter.allow() and not limiter.allow()
    now[0] += 3600  # refill caps at the burst size
    assert sum(limiter.allow() for _ in range(10)) == 6


async def test_busy_port_raises_and_engine_signal_handlers_are_kept(engine_view):
    view, *_ = engine_view
    before = signal.getsignal(signal.SIGINT)
    handle = await start_monitor(view, monitor_config(), env={})
    try:
        assert signal.getsignal(signal.SIGINT) is before
        with pytest.raises(OSError):
            await start_monitor(view, monitor_config(port=handle.port), env={})
    finally:
        await handle.stop()
