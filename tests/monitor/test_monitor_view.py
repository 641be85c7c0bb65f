"""StoreView and redaction, without HTTP."""

from __future__ import annotations

from decimal import Decimal

import pytest
from monitor_harness import NOW_MS

from ate.model import EngineEvent, Side, TradingState
from ate.monitor.view import CHART_POINTS, StoreView, redact
from ate.risk.state import write_state
from ate.store import Store
from ate.store import schema as t


def test_redact_masks_secret_keys_and_makes_json_values():
    out = redact({"api_key": "k", "nested": [{"Signature": "s", "qty": Decimal("0.10")}], "side": Side.BUY,
                  "nan": float("nan"), "bot_token": "t", "x-private": 1, "note": "fine", "passphrase": "p"})
    assert out == {"api_key": "***", "nested": [{"Signature": "***", "qty": "0.10"}], "side": "BUY", "nan": None,
                   "bot_token": "***", "x-private": "***", "note": "fine", "passphrase": "***"}


async def test_store_only_view_reads_risk_state_and_module_events(store, clock):
    view = StoreView(store, clock=clock)
    snap = await view.metrics_snapshot()
    assert snap["system_health"]["trading_state"]["state"] == "ACTIVE"
    assert snap["system_health"]["module_status"]["bitvol"] == "OK"
    assert snap["system_health"]["module_status"]["garch"] == "UNKNOWN"
    write_state(store, TradingState.REDUCING, "emergency", "level 2", NOW_MS)
    store.add_event(EngineEvent(NOW_MS, "module_status", "garch", data={"module": "garch", "status": "STALE"}))
    store.add_event(EngineEvent(NOW_MS + 1, "module_status", "bitvol", data={"module": "bitvol", "status": "ERROR"}))
    health = (await view.metrics_snapshot())["system_health"]
    assert health["trading_state"] == {"state": "REDUCING", "who": "emergency", "why": "level 2", "ts_ms": NOW_MS}
    assert (health["module_status"]["garch"], health["module_status"]["bitvol"]) == ("STALE", "ERROR")


async def test_equity_chart_is_downsampled_keeping_the_last_point(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/big.db")
    start = NOW_MS - 2 * 86_400_000
    with store.engine.begin() as c:  # a minute series over two days, written in one transaction
        c.execute(t.equity_snapshots.insert(), [
            {"ts_ms": start + i * 60_000, "equity": Decimal(10_000 + i), "flows": Decimal(0), "shadow": False}
            for i in range(2 * 1440 + 1)])
    view = StoreView(store, clock=lambda: NOW_MS)
    chart = await view.equity(days=30)
    assert len(chart["equity"]) <= CHART_POINTS + 1
    assert chart["equity"][0] == [start, 10_000.0]
    assert chart["equity"][-1] == [NOW_MS, 10_000.0 + 2 * 1440]
    # started at 12:00 two days ago: half a day, a full day, half a day (1 USD per minute)
    assert [p for _, p in chart["daily_pnl"]] == pytest.approx([720.0, 1440.0, 720.0])
    store.close()


async def test_trades_newest_first_and_orders(store, clock):
    view = StoreView(store, clock=clock)
    trades = await view.trades(limit=2)
    assert [t["trade_id"] for t in trades] == ["t2", "t1"]
    assert trades[0]["price"] == "59002" and trades[0]["side"] == "BUY"
    assert len(await view.orders()) == 3
    assert [o["status"] for o in await view.orders(open_only=True)] == ["NEW", "NEW"]
