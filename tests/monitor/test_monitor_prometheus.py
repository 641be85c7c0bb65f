"""/metrics parses as Prometheus text with the documented ate_* names, on a registry of its own."""

from __future__ import annotations

import aiohttp
import prometheus_client
import pytest
from prom_lint import lint
from prometheus_client.parser import text_string_to_metric_families

from ate.monitor.recorder import MODULE_STATUSES

DOCUMENTED = {
    "ate_api_error_ratio": "gauge", "ate_api_requests": "counter", "ate_trade_latency_seconds": "histogram",
    "ate_websocket_connected": "gauge",
    "ate_websocket_last_message_age_seconds": "gauge", "ate_module_status": "gauge",
    "ate_clock_skew_seconds": "gauge", "ate_uptime_seconds": "gauge", "ate_trading_state": "gauge",
    "ate_arbitrage_opportunities_detected": "counter", "ate_arbitrage_trades_executed": "counter",
    "ate_arbitrage_average_profit_bps": "gauge", "ate_arbitrage_slippage_bps": "gauge",
    "ate_carry_current_delta": "gauge", "ate_carry_target_delta": "gauge",
    "ate_carry_funding_captured_usd": "gauge", "ate_sharpe_ratio_rolling": "gauge", "ate_daily_pnl_usd": "gauge",
    "ate_win_rate_ratio": "gauge", "ate_position_qty": "gauge", "ate_position_notional_usd": "gauge",
    "ate_venue_rate_limit_used": "gauge", "ate_venue_rate_limit": "gauge",
    "ate_venue_rate_limited_responses": "counter", "ate_venue_throttled_seconds": "counter",
    "ate_alerts_sent": "counter", "ate_alerts_failed": "counter", "ate_reconciliation_corrections": "counter",
    "ate_external_ledger_events": "counter",
}
# Operations figures as the engine's observer reports them (monitor/observer.py).
OPERATIONS = {
    "venues": {"binance_spot": {"windows": {"weight_1M": {"used": 120, "limit": 6000},
                                            "orders_10S": {"used": 3, "limit": 50}},
                                "http_429": 2, "http_418": 1, "throttled_s": 31.5}},
    "alerts": {"sent": {"kill_switch": 2, "risk_breach": 1}, "failed": {"risk_breach": 1}},
    "events": {"reconciliation": 3, "external_withdrawal": 1, "liquidation": 0},
    "clock_skew_ms": {"binance_usdm": 250.0},
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


def test_lint_catches_what_the_conventions_forbid():
    text = ("# HELP ate_fill_pct x\n# TYPE ate_fill_pct gauge\nate_fill_pct 1\n"
            "# HELP ate_lat x\n# TYPE ate_lat gauge\nate_lat{quantile=\"0.5\"} 1\n"
            "# HELP ate_orders_total x\n# TYPE ate_orders_total gauge\nate_orders_total 1\n"
            "# HELP ate_age_ms x\n# TYPE ate_age_ms gauge\nate_age_ms 1\n")
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert sorted(lint(fams)) == ["ate_age_ms: not a base unit", "ate_fill_pct: not a base unit",
                                  "ate_lat: quantile label on a gauge", "ate_orders_total: _total on a gauge"]


async def test_prometheus_names_types_and_values(monitor):
    handle, view, rec, controls = monitor
    rec.operations = lambda: OPERATIONS
    fams = await scrape(handle.url)
    for name, kind in DOCUMENTED.items():
        assert name in fams, name
        assert fams[name].type == kind, name
    assert all(name.startswith("ate_") for name in fams)
    assert lint(fams) == []
    assert value(fams["ate_api_error_ratio"], venue="binance", window="5m") == pytest.approx(0.1)
    assert value(fams["ate_api_requests"], venue="binance", outcome="error") == 4
    assert value(fams["ate_api_requests"], venue="binance", outcome="ok") == 36
    hist = fams["ate_trade_latency_seconds"]
    count = [s for s in hist.samples if s.name.endswith("_count")][0].value
    le_25ms = [s for s in hist.samples if s.name.endswith("_bucket") and s.labels["le"] == "0.025"][0].value
    assert (count, le_25ms) == (40, 21)  # 5..44 ms
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
    assert value(fams["ate_venue_rate_limit_used"], venue="binance_spot", window="weight_1M") == 120
    assert value(fams["ate_venue_rate_limit"], venue="binance_spot", window="orders_10S") == 50
    assert value(fams["ate_venue_rate_limited_responses"], venue="binance_spot", code="429") == 2
    assert value(fams["ate_venue_rate_limited_responses"], venue="binance_spot", code="418") == 1
    assert value(fams["ate_venue_throttled_seconds"], venue="binance_spot") == 31.5
    assert value(fams["ate_alerts_sent"], kind="kill_switch") == 2
    assert value(fams["ate_alerts_failed"], kind="risk_breach") == 1
    assert value(fams["ate_reconciliation_corrections"]) == 3
    assert value(fams["ate_external_ledger_events"], kind="external_withdrawal") == 1
    assert value(fams["ate_clock_skew_seconds"], venue="binance_usdm") == pytest.approx(0.25)

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
