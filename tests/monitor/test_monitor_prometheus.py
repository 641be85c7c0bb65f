"""/metrics parses as Prometheus text with the documented ate_* names, on a registry of its own."""

from __future__ import annotations

import aiohttp
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ate.monitor.recorder import MODULE_STATUSES

DOCUMENTED = {
    "ate_api_error_rate": "gauge", "ate_api_requests": "counter", "ate_trade_latency_seconds": "histogram",
    "ate_trade_latency_quantile_seconds": "gauge", "ate_websocket_connected": "gauge",
    "ate_websocket_last_message_age_seconds": "gauge", "ate_module_status": "gauge",
    "ate_clock_skew_seconds": "gauge", "ate_uptime_seconds": "gauge", "ate_trading_state": "gauge",
    "ate_arbitrage_opportunities_detected": "counter", "ate_arbitrage_trades_executed": "counter",
    "ate_arbitrage_average_profit_bps": "gauge", "ate_arbitrage_slippage_bps": "gauge",
    "ate_carry_current_delta": "gauge", "ate_carry_target_delta": "gauge",
    "ate_carry_funding_captured_usd": "gauge", "ate_sharpe_ratio_rolling": "gauge", "ate_daily_pnl_usd": "gauge",
    "ate_win_rate_pct": "gauge", "ate_position_qty": "gauge", "ate_position_notional_usd": "gauge",
}


async def scrape(url: str) -> dict:
    async with aiohttp.ClientSession() as s, s.get(url + "/metrics") as r:
        assert r.status == 200
        assert r.headers["content-type"].startswith("text/plain")
        text = await r.text()
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fam, **labels) -> float:
    [s] = [s for s in fam.samples if all(s.labels.get(k) == v for k, v in labels.items())
           and s.name in (fam.name, fam.name + "_total")]
    return s.value


async def test_prometheus_names_types_and_values(monitor):
    handle, view, rec, controls = monitor
    fams = await scrape(handle.url)
    for name, kind in DOCUMENTED.items():
        assert name in fams, name
        assert fams[name].type == kind, name
    assert all(name.startswith("ate_") for name in fams)
    assert value(fams["ate_api_error_rate"], venue="binance", window="5m") == pytest.approx(0.1)
    assert value(fams["ate_api_requests"], venue="binance", outcome="error") == 4
    assert value(fams["ate_api_requests"], venue="binance", outcome="ok") == 36
    hist = fams["ate_trade_latency_seconds"]
    count = [s for s in hist.samples if s.name.endswith("_count")][0].value
    le_25ms = [s for s in hist.samples if s.name.endswith("_bucket") and s.labels["le"] == "0.025"][0].value
    assert (count, le_25ms) == (40, 21)  # 5..44 ms
    assert value(fams["ate_trade_latency_quantile_seconds"], quantile="0.99") == pytest.approx(0.04361)
    assert value(fams["ate_module_status"], module="garch", status="OK") == 1
    assert value(fams["ate_module_status"], module="garch", status="ERROR") == 0
    assert len(fams["ate_module_status"].samples) == 8 * len(MODULE_STATUSES)  # bounded label set
    assert value(fams["ate_clock_skew_seconds"], venue="binance") == pytest.approx(-0.012)
    assert value(fams["ate_trading_state"], state="ACTIVE") == 1
    assert value(fams["ate_arbitrage_opportunities_detected"]) == 1
    assert value(fams["ate_carry_funding_captured_usd"]) == pytest.approx(18.25)
    assert value(fams["ate_position_qty"], venue="binance_usdm", symbol="BTCUSDT") == -0.5
    # hedge effectiveness is undefined below 48 samples: absent rather than a made-up number
    assert "ate_carry_hedge_effectiveness" not in fams

    rec.arbitrage_opportunity()
    rec.module("garch", "ERROR")
    await controls.kill_switch.activate("test", "tester")
    fams = await scrape(handle.url)
    assert value(fams["ate_arbitrage_opportunities_detected"]) == 2
    assert value(fams["ate_module_status"], module="garch", status="ERROR") == 1
    assert value(fams["ate_trading_state"], state="HALTED") == 1


async def test_registry_is_per_server_not_global(monitor):
    handle, *_ = monitor
    await scrape(handle.url)
    global_text = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    assert "ate_" not in global_text
