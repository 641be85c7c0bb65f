"""StoreView and redaction, without HTTP."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
from monitor_harness import NOW_MS

from ate.config import parse_config
from ate.model import EngineEvent, Fill, Instrument, MarketKind, Mode, Side, TradingState
from ate.monitor.recorder import CANDLES, MetricsRecorder
from ate.monitor.standalone import store_clock
from ate.monitor.view import CHART_POINTS, StoreView, redact
from ate.risk.state import write_state
from ate.store import Store
from ate.store import schema as t

ROOT = Path(__file__).resolve().parents[2]


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


async def test_engine_block_names_mode_clock_and_read_only(store, clock):
    snap = await StoreView(store, mode=Mode.PAPER, clock=clock).metrics_snapshot()
    assert snap["engine"] == {"mode": "paper", "mode_source": "config", "read_only": True, "clock": "wall",
                              "clock_note": None, "usd_decimals": 2, "startup": None}
    shadow = StoreView(store, mode=Mode.SHADOW, clock=clock, clock_kind="simulated")
    assert shadow.shadow  # shadow mode reads the shadow book
    assert (await shadow.metrics_snapshot())["current_positions"] == []


async def test_precision_from_instrument_filters_or_learnt_from_venue_values(store, clock):
    inst = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, Decimal("0.01"), Decimal("0.00001"))
    exact = StoreView(store, clock=clock, instruments={inst.key: inst})
    rows = (await exact.metrics_snapshot())["current_positions"]
    assert [(r["symbol"], r["venue"], r["price_decimals"], r["qty_decimals"]) for r in rows] == [
        ("BTCUSDT", "binance", 2, 5), ("BTCUSDT", "binance_usdm", None, 1)]  # usdm: no filters, qty "-0.5"
    # Read-only: no filters, so the precision is what the venue accepted (orders 59000/59001 × 0.01, fills).
    learnt = StoreView(store, clock=clock)
    await learnt.metrics_snapshot()
    assert [(o["price_decimals"], o["qty_decimals"]) for o in await learnt.orders()] == [(0, 2)] * 3
    store.add_fill(Fill("binance", "BTCUSDT", "t9", "ate-dir-2", "v9", Side.SELL, Decimal("0.015"),
                        Decimal("59010.5"), Decimal("0"), "USDT", False, NOW_MS - 500, "directional"))
    trades = await learnt.trades(limit=1)
    assert (trades[0]["price_decimals"], trades[0]["qty_decimals"]) == (1, 3)


def test_recorder_keeps_closed_candles_once_and_bounded(clock):
    rec = MetricsRecorder(clock)
    for i in range(CANDLES + 5):
        rec.candle("binance:BTCUSDT", i * 60_000, 1.0, 2.0, 0.5, 1.5)
    rec.candle("binance:BTCUSDT", (CANDLES + 4) * 60_000, 9.0, 9.0, 9.0, 9.0)  # repeated close: ignored
    series = rec.candles()["binance:BTCUSDT"]
    assert len(series) == CANDLES and series[0][0] == 5 * 60_000 and series[-1] == ((CANDLES + 4) * 60_000, 1.0,
                                                                                    2.0, 0.5, 1.5)


async def test_split_follows_each_new_equity_snapshot(store, clock):
    view = StoreView(store, clock=clock, equity_ttl_s=0)
    first = (await view.metrics_snapshot())["strategy_performance"]["performance"]["daily_pnl_split"]
    assert first["by_strategy_usd"] == {"directional": 59.763, "funding_carry": 12.5}
    # A sell of 0.01 at 61,500 against the 61,000 mark, then the engine's next equity snapshot.
    store.add_fill(Fill("binance", "BTCUSDT", "t9", "ate-dir-2", "v9", Side.SELL, Decimal("0.01"), Decimal("61500"),
                        Decimal("0"), "USDT", False, NOW_MS + 30_000, "directional"))
    assert (await view.metrics_snapshot())["strategy_performance"]["performance"]["daily_pnl_split"] == first
    clock.advance(60_000)
    store.add_equity(NOW_MS + 60_000, store.equity_series()[-1][1] + 5)
    split = (await view.metrics_snapshot())["strategy_performance"]["performance"]["daily_pnl_split"]
    assert split["until_ms"] == NOW_MS + 60_000
    assert split["by_strategy_usd"] == {"directional": pytest.approx(59.763 + 5.0), "funding_carry": 12.5}


def test_read_only_clock_of_a_simulated_store_is_its_newest_record(store, tmp_path):
    """`ate dashboard` over the demo's store: its records carry the simulator's time, which stopped with the
    engine, so "now" is the newest record (the wall clock would put today on another day than the data)."""
    demo = json.loads((ROOT / "configs" / "demo.json").read_text())
    cfg = parse_config(demo | {"store": {"url": f"sqlite:///{tmp_path}/ate.db"}})
    clock, kind, note = store_clock(cfg, store)
    assert (clock(), kind) == (NOW_MS - 4000, "simulated")  # the recorded module_status event
    assert note == "the simulator stopped with the engine: time of the newest record"
    real = parse_config({"mode": "paper", "store": {"url": f"sqlite:///{tmp_path}/ate.db"}})
    clock, kind, note = store_clock(real, store)
    assert kind == "wall" and note is None and abs(clock() - time.time() * 1000) < 60_000
