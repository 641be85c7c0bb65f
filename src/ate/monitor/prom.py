"""Prometheus exposition of a metrics snapshot, on a registry owned by one server (never the global one).

Names follow the Prometheus conventions (checked by tests/monitor/test_monitor_prometheus.py): `ate_`
prefix, base units as suffixes (`_seconds`, `_ratio` for 0..1, `_usd`, `_bps`), counters end in `_total`,
quantiles only from the histogram (no gauge with a `quantile` label).
"""

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
        rate = GaugeMetricFamily("ate_api_error_ratio", "Share of failed venue requests over a window",
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
        yield from self._operations(h.get("operations") or {})

    def _operations(self, ops: dict) -> Iterator[Metric]:
        """Venue limits and throttling, alerts, and the events operators alert on (see EngineObserver)."""
        venues = ops.get("venues", {})
        used = GaugeMetricFamily("ate_venue_rate_limit_used", "Units used in the current rate-limit window",
                                 labels=["venue", "window"])
        limit = GaugeMetricFamily("ate_venue_rate_limit", "Units allowed per rate-limit window",
                                  labels=["venue", "window"])
        limited = CounterMetricFamily("ate_venue_rate_limited_responses", "HTTP 429 and 418 answers by venue",
                                      labels=["venue", "code"])
        throttled = CounterMetricFamily("ate_venue_throttled_seconds", "Time requests waited for rate limits and "
                                        "venue pauses", labels=["venue"])
        for venue, v in venues.items():
            for window, w in v["windows"].items():
                used.add_metric([venue, window], w["used"])
                limit.add_metric([venue, window], w["limit"])
            limited.add_metric([venue, "429"], v["http_429"])
            limited.add_metric([venue, "418"], v["http_418"])
            throttled.add_metric([venue], v["throttled_s"])
        yield from (used, limit, limited, throttled)
        alerts = ops.get("alerts", {})
        for outcome in ("sent", "failed"):
            fam = CounterMetricFamily(f"ate_alerts_{outcome}", f"Alert deliveries {outcome}, by kind (per receiver)",
                                      labels=["kind"])
            for kind, n in sorted(alerts.get(outcome, {}).items()):
                fam.add_metric([kind], n)
            yield fam
        events = dict(ops.get("events", {}))
        if "reconciliation" in events:
            yield CounterMetricFamily("ate_reconciliation_corrections", "Reconciliation corrections recorded",
                                      value=events.pop("reconciliation"))
        external = CounterMetricFamily("ate_external_ledger_events", "Money the engine did not move: deposits, "
                                       "withdrawals, liquidations, unknown orders", labels=["kind"])
        for kind, n in sorted(events.items()):
            external.add_metric([kind], n)
        yield external

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
        win = perf["win_rate_pct"]
        yield from _gauge("ate_win_rate_ratio", "Winning share of closed trades",
                          None if win is None else win / 100)

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
