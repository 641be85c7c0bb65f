"""Prometheus exposition of a metrics snapshot, on a registry owned by one server (never the global one)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ate.model import TradingState
from ate.monitor.recorder import MODULE_STATUSES, MODULES

MAX_POSITIONS = 64  # label sets for positions; configured markets are far fewer


def _gauge(name: str, doc: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, doc, value=float(value))


def _counter(name: str, doc: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield CounterMetricFamily(name, doc, value=float(value))


class SnapshotCollector(Collector):
    """Turns the latest `EngineView.metrics_snapshot()` into metric families when scraped."""

    def __init__(self) -> None:
        self.snapshot: dict = {}

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        if not snap:
            return
        health = snap["system_health"]
        strat = snap["strategy_performance"]
        yield from self._health(health)
        yield from self._strategies(strat)
        yield from self._positions(snap["current_positions"])

    def _health(self, h: dict) -> Iterator[Metric]:
        rate = GaugeMetricFamily("ate_api_error_rate", "Share of failed venue requests over a window",
                                 labels=["venue", "window"])
        for venue, windows in h["api_error_rate"].items():
            for window, value in windows.items():
                if value is not None:
                    rate.add_metric([venue, window], value)
        yield rate
        requests = CounterMetricFamily("ate_api_requests", "Venue requests by outcome", labels=["venue", "outcome"])
        for venue, r in h["api_requests"].items():
            requests.add_metric([venue, "error"], r["errors"])
            requests.add_metric([venue, "ok"], r["total"] - r["errors"])
        yield requests
        lat = h["trade_latency_ms"]
        if "buckets" in lat:
            yield HistogramMetricFamily(
                "ate_trade_latency_seconds", "Order send to venue acknowledgement",
                buckets=[("+Inf" if b == "+Inf" else str(float(b) / 1000), n) for b, n in lat["buckets"].items()],
                sum_value=lat["sum"] / 1000)
        quantiles = GaugeMetricFamily("ate_trade_latency_quantile_seconds", "Trade latency percentiles",
                                      labels=["quantile"])
        for q, key in (("0.5", "p50"), ("0.99", "p99")):
            if lat.get(key) is not None:
                quantiles.add_metric([q], lat[key] / 1000)
        yield quantiles
        connected = GaugeMetricFamily("ate_websocket_connected", "1 when the stream is connected", labels=["stream"])
        age = GaugeMetricFamily("ate_websocket_last_message_age_seconds", "Seconds since the stream's last message",
                                labels=["stream"])
        for stream, s in h["websocket"].items():
            connected.add_metric([stream], 1.0 if s["connected"] else 0.0)
            if s["last_message_age_s"] is not None:
                age.add_metric([stream], s["last_message_age_s"])
        yield connected
        yield age
        status = GaugeMetricFamily("ate_module_status", "1 for each module's current status",
                                   labels=["module", "status"])
        for module in MODULES:
            current = h["module_status"].get(module, "UNKNOWN")
            for s in MODULE_STATUSES:
                status.add_metric([module, s], 1.0 if s == current else 0.0)
        yield status
        skew = GaugeMetricFamily("ate_clock_skew_seconds", "Venue server time minus local time", labels=["venue"])
        for venue, ms in h["clock_skew_ms"].items():
            skew.add_metric([venue], ms / 1000)
        yield skew
        yield from _gauge("ate_uptime_seconds", "Seconds since the engine started", h["uptime_s"])
        state = GaugeMetricFamily("ate_trading_state", "1 for the current trading state", labels=["state"])
        for s in TradingState:
            state.add_metric([s.value], 1.0 if h["trading_state"].get("state") == s.value else 0.0)
        yield state

    def _strategies(self, s: dict) -> Iterator[Metric]:
        arb, carry, perf = s["arbitrage"], s["delta_neutral"], s["performance"]
        yield from _counter("ate_arbitrage_opportunities_detected", "Arbitrage episodes since mode start",
                            arb["opportunities_detected"])
        yield from _counter("ate_arbitrage_trades_executed", "Arbitrage attempts with any fill",
                            arb["trades_executed"])
        yield from _gauge("ate_arbitrage_average_profit_bps", "Realised net P&L per buy notional",
                          arb["average_profit_bps"])
        yield from _gauge("ate_arbitrage_slippage_bps", "Expected minus realised net bps, notional-weighted",
                          arb["slippage_bps"])
        yield from _gauge("ate_carry_current_delta", "Carry book delta over hedged notional", carry["current_delta"])
        yield from _gauge("ate_carry_target_delta", "Carry book target delta", carry["target_delta"])
        yield from _gauge("ate_carry_hedge_effectiveness", "1 - var(hedged)/var(spot) of hourly MTM",
                          carry["hedge_effectiveness"])
        yield from _gauge("ate_carry_funding_captured_usd", "Net funding on carry legs since strategy start",
                          carry["funding_captured_usd"])
        yield from _gauge("ate_sharpe_ratio_rolling", "Annualised Sharpe of daily returns, last 30 days",
                          perf["sharpe_ratio_rolling"])
        yield from _gauge("ate_daily_pnl_usd", "Flow-adjusted P&L since 00:00 UTC", perf["daily_pnl_usd"])
        yield from _gauge("ate_win_rate_pct", "Winning share of closed trades", perf["win_rate_pct"])

    def _positions(self, positions: list[dict]) -> Iterator[Metric]:
        qty = GaugeMetricFamily("ate_position_qty", "Signed base quantity", labels=["venue", "symbol"])
        notional = GaugeMetricFamily("ate_position_notional_usd", "Absolute quantity times mark",
                                     labels=["venue", "symbol"])
        for p in positions[:MAX_POSITIONS]:
            qty.add_metric([p["venue"], p["symbol"]], float(p["qty"]))
            notional.add_metric([p["venue"], p["symbol"]], float(p["notional"]))
        yield qty
        yield notional


class Exposition:
    """A dedicated registry and its collector; `render(snapshot)` gives the text format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = SnapshotCollector()
        self.registry.register(self.collector)

    def render(self, snapshot: dict) -> bytes:
        self.collector.snapshot = snapshot
        return generate_latest(self.registry)
