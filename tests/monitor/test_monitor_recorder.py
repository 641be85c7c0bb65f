"""MetricsRecorder: windows, percentiles, bounded labels, strategy figures, driven by a manual clock."""

from __future__ import annotations

import numpy as np
import pytest
from monitor_harness import ManualClock

from ate.monitor.recorder import MAX_LABELS, MetricsRecorder


def test_error_rate_windows_5m_and_24h():
    clock = ManualClock(1_773_144_000_000)
    rec = MetricsRecorder(clock)
    for i in range(100):  # 10 % errors an hour ago
        rec.request("binance", ok=i % 10 != 0)
    clock.advance(3_600_000)
    for i in range(20):  # 50 % errors now
        rec.request("binance", ok=i % 2 == 0)
    rates = rec.system_health()["api_error_rate"]["binance"]
    assert rates["5m"] == pytest.approx(0.5)
    assert rates["24h"] == pytest.approx((10 + 10) / 120)
    clock.advance(6 * 60_000)
    rates = rec.system_health()["api_error_rate"]["binance"]
    assert rates["5m"] is None  # no requests in the last 5 minutes
    assert rates["24h"] == pytest.approx(20 / 120)
    clock.advance(24 * 3_600_000)
    assert rec.system_health()["api_error_rate"]["binance"]["24h"] is None
    req = rec.system_health()["api_requests"]["binance"]
    assert (req["total"], req["errors"]) == (120, 20)


def test_latency_percentiles_and_histogram():
    rec = MetricsRecorder(ManualClock())
    samples = list(np.random.default_rng(2).gamma(2.0, 15.0, 1000))
    for s in samples:
        rec.latency(s)
    lat = rec.system_health()["trade_latency_ms"]
    assert lat["p50"] == pytest.approx(np.percentile(samples, 50))
    assert lat["p99"] == pytest.approx(np.percentile(samples, 99))
    assert lat["buckets"]["+Inf"] == lat["count"] == 1000
    assert lat["buckets"]["25"] == sum(1 for s in samples if s <= 25)
    assert lat["sum"] == pytest.approx(sum(samples))


def test_streams_ages_and_skew():
    clock = ManualClock()
    rec = MetricsRecorder(clock)
    rec.stream_status("binance:depth", True)
    rec.stream_message("binance:depth")
    rec.stream_status("backpack:book", False)
    rec.clock_skew("binance", 35.0)
    clock.advance(2500)
    h = rec.system_health()
    assert h["websocket"]["binance:depth"] == {"connected": True, "last_message_age_s": 2.5}
    assert h["websocket"]["backpack:book"] == {"connected": False, "last_message_age_s": None}
    assert h["clock_skew_ms"] == {"binance": 35.0}
    assert h["uptime_s"] == 2.5


def test_label_values_are_bounded():
    rec = MetricsRecorder(ManualClock())
    for i in range(MAX_LABELS + 10):
        rec.request(f"venue{i}", ok=True)
        rec.stream_message(f"stream{i}")
    h = rec.system_health()
    assert len(h["api_requests"]) == MAX_LABELS + 1
    assert h["api_requests"]["other"]["total"] == 10
    assert len(h["websocket"]) == MAX_LABELS + 1


def test_modules_are_the_eight_and_validated():
    rec = MetricsRecorder(ManualClock())
    assert set(rec.system_health()["module_status"].values()) == {"UNKNOWN"}
    assert len(rec.system_health()["module_status"]) == 8
    rec.module("garch", "DEGRADED", {"sigma": 0.5})
    assert rec.system_health()["module_status"]["garch"] == "DEGRADED"
    assert rec.module_outputs()["garch"]["output"] == {"sigma": 0.5}
    with pytest.raises(ValueError, match="unknown module"):
        rec.module("rsi", "OK")
    with pytest.raises(ValueError, match="status"):
        rec.module("garch", "FINE")


def test_arbitrage_and_carry_figures():
    rec = MetricsRecorder(ManualClock())
    for _ in range(3):
        rec.arbitrage_opportunity()
    rec.arbitrage_attempt(filled=True, net_pnl_usd=5.52, buy_notional_usd=2400.0, expected_bps=25.0, realised_bps=23.0)
    rec.arbitrage_attempt(filled=True, net_pnl_usd=-1.0, buy_notional_usd=600.0, expected_bps=20.0,
                          realised_bps=-16.67)
    rec.arbitrage_attempt(filled=False)
    rec.closed_trade("directional", 0.005)  # neither win nor loss
    rec.closed_trade("directional", 30.0)
    figures = rec.strategy_figures()
    arb = figures["arbitrage"]
    assert (arb["opportunities_detected"], arb["trades_executed"], arb["zero_fill_attempts"]) == (3, 2, 1)
    assert arb["average_profit_bps"] == pytest.approx(4.52 / 3000 * 1e4)
    assert arb["slippage_bps"] == pytest.approx((2400 * 2 + 600 * 36.67) / 3000)
    assert figures["win_rate_pct"] == pytest.approx(200 / 3)
    assert figures["win_rate_by_strategy"] == {"arbitrage": 50.0, "directional": 100.0}

    rec.carry_book("BTC", 1.0, -0.97, 1.0, 60_000.0)
    for i in range(60):  # spot moves, hedged book flat: perfect hedge
        rec.carry_mtm(spot_mtm=100.0 * ((-1) ** i) * (i % 7), hedged_mtm=0.0)
    carry = rec.strategy_figures()["delta_neutral"]
    assert carry["current_delta"] == pytest.approx(0.03)
    assert carry["target_delta"] == 0.0
    assert carry["delta_by_asset"]["BTC"] == pytest.approx(0.03)
    assert carry["hedge_effectiveness"] == 1.0
