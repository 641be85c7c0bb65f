"""In-memory figures the engine and venue clients push on the hot path (O(1) per call, bounded memory).

Call every method from the engine's event loop thread; snapshots are taken on the same thread.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

from ate.monitor.figures import (
    average_profit_bps,
    carry_delta,
    hedge_effectiveness,
    percentile,
    trade_outcome,
    win_rate,
)

MODULES = ("bitvol", "lxvx", "garch", "kelly", "gamma", "emergency", "atr_supertrend", "multi_timeframe")
MODULE_STATUSES = ("OK", "WARMUP", "STALE", "DEGRADED", "ERROR", "UNKNOWN")
# Upper bounds in ms; chosen around loopback (single ms) to cross-region venue round trips (seconds).
LATENCY_BUCKETS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
MAX_LABELS = 16  # distinct venues or streams kept as label values; later ones share "other"
LATENCY_SAMPLES = 2048
HEDGE_SAMPLES = 30 * 24 + 1
CANDLES = 360  # closed 1m candles kept per market for the dashboard's price chart (six hours)
MINUTE_MS = 60_000

Clock = Callable[[], int]


def wall_ms() -> int:
    return int(time.time() * 1000)


def _label(known: dict, name: str) -> str:
    return name if name in known or len(known) < MAX_LABELS else "other"


@dataclass(slots=True)
class _VenueRequests:
    # Per-minute buckets [minute, total, errors], newest last, for the 5-minute and 24-hour rates.
    minutes: deque = field(default_factory=lambda: deque(maxlen=24 * 60))
    total: int = 0
    errors: int = 0
    last_ok_ms: int | None = None

    def add(self, minute: int, ok: bool) -> None:
        if not self.minutes or self.minutes[-1][0] != minute:
            self.minutes.append([minute, 0, 0])
        bucket = self.minutes[-1]
        bucket[1] += 1
        self.total += 1
        if not ok:
            bucket[2] += 1
            self.errors += 1

    def rate(self, now_minute: int, minutes: int) -> float | None:
        total = errors = 0
        for minute, n, e in reversed(self.minutes):
            if minute <= now_minute - minutes:
                break
            total += n
            errors += e
        return None if total == 0 else errors / total


@dataclass(slots=True)
class _Stream:
    connected: bool = False
    last_message_ms: int | None = None


class MetricsRecorder:
    """Hot-path sink for operational and strategy figures; `snapshot()` turns them into the API structure."""

    def __init__(self, clock: Clock = wall_ms) -> None:
        self.clock = clock
        self.started_ms = clock()
        self._venues: dict[str, _VenueRequests] = {}
        self._latency: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self._latency_buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self._latency_sum = 0.0
        self._streams: dict[str, _Stream] = {}
        self._modules: dict[str, tuple[str, dict | None]] = {m: ("UNKNOWN", None) for m in MODULES}
        self._skew_ms: dict[str, float] = {}
        self._opportunities = 0
        self._arb_trades = 0
        self._arb_zero_fill = 0
        self._arb_pnl = 0.0
        self._arb_buy_notional = 0.0
        self._arb_slippage = [0.0, 0.0]  # Σ notional·(expected − realised bps), Σ notional
        self._carry_books: dict[str, tuple[float, float, float, float]] = {}
        self._carry_reported: dict | None = None  # the carry strategy's own delta figures, when it runs here
        self._hedge_mtm: deque[tuple[float, float]] = deque(maxlen=HEDGE_SAMPLES)
        self._closed: dict[str, list[int]] = {}  # strategy -> [wins, losses]
        self._directional: dict | None = None
        self._candles: dict[str, deque[tuple[int, float, float, float, float]]] = {}
        # Figures read when a snapshot is taken (venue limits, alerts, counted events, skew): the engine's
        # observer, which reads them from the venue clients and the notifier instead of having them pushed.
        self.operations: Callable[[], dict] | None = None

    # -- venue health --

    def request(self, venue: str, ok: bool) -> None:
        """One REST/WS request outcome; errors are timeouts, transport errors, 5xx, 418, 429 and auth."""
        now = self.clock()
        venue = _label(self._venues, venue)
        stats = self._venues.get(venue) or self._venues.setdefault(venue, _VenueRequests())
        stats.add(now // MINUTE_MS, ok)
        if ok:
            stats.last_ok_ms = now

    def latency(self, ms: float) -> None:
        """Order round trip (send → venue acknowledgement) in milliseconds."""
        self._latency.append(ms)
        self._latency_buckets[bisect_left(LATENCY_BUCKETS_MS, ms)] += 1
        self._latency_sum += ms

    def stream_status(self, stream: str, connected: bool) -> None:
        stream = _label(self._streams, stream)
        self._streams.setdefault(stream, _Stream()).connected = connected

    def stream_message(self, stream: str) -> None:
        stream = _label(self._streams, stream)
        self._streams.setdefault(stream, _Stream()).last_message_ms = self.clock()

    def clock_skew(self, venue: str, skew_ms: float) -> None:
        """Venue server time − local time."""
        self._skew_ms[_label(self._skew_ms, venue)] = skew_ms

    def module(self, name: str, status: str, output: dict | None = None) -> None:
        """Latest output of one of the eight signal modules (status OK/WARMUP/STALE/DEGRADED/ERROR)."""
        if name not in self._modules:
            raise ValueError(f"unknown module {name!r}")
        if status not in MODULE_STATUSES:
            raise ValueError(f"unknown module status {status!r}")
        self._modules[name] = (status, output)

    def candle(self, market: str, open_ms: int, o: float, h: float, low: float, c: float) -> None:
        """A closed 1m candle of a market ("venue:symbol"), for the price chart."""
        market = _label(self._candles, market)
        series = self._candles.get(market)
        if series is None:
            series = self._candles[market] = deque(maxlen=CANDLES)
        if series and series[-1][0] >= open_ms:  # a replayed or repeated close
            return
        series.append((open_ms, o, h, low, c))

    # -- strategies --

    def arbitrage_opportunity(self) -> None:
        """A new episode: maximal run on one pair/direction with net ≥ threshold and fresh books."""
        self._opportunities += 1

    def arbitrage_attempt(self, *, filled: bool, net_pnl_usd: float = 0.0, buy_notional_usd: float = 0.0,
                          expected_bps: float = 0.0, realised_bps: float = 0.0) -> None:
        """An arbitrage attempt once settled: realised net P&L after fees, unwinds and conversion."""
        if not filled:
            self._arb_zero_fill += 1
            return
        self._arb_trades += 1
        self._arb_pnl += net_pnl_usd
        self._arb_buy_notional += buy_notional_usd
        self._arb_slippage[0] += buy_notional_usd * (expected_bps - realised_bps)
        self._arb_slippage[1] += buy_notional_usd
        self.closed_trade("arbitrage", net_pnl_usd)

    def carry_book(self, asset: str, spot: float, perp: float, hedge_ratio: float, mark: float) -> None:
        """Current coins of one carry book (spot on all venues, signed perp)."""
        self._carry_books[asset] = (spot, perp, hedge_ratio, mark)

    def carry_mtm(self, spot_mtm: float, hedged_mtm: float) -> None:
        """Hourly mark-to-market of the carry book's spot legs alone and of spot + perp (excl. funding, fees)."""
        self._hedge_mtm.append((spot_mtm, hedged_mtm))

    def strategy_metrics(self, metrics: dict[str, dict]) -> None:
        """Adopt the figures the running strategies compute themselves (their `metrics()`), so the monitor
        shows exactly what the strategies count rather than a second count of the same events."""
        arb = metrics.get("arbitrage")
        if arb:
            self._opportunities = int(arb.get("opportunities_detected", 0))
            self._arb_trades = int(arb.get("trades_executed", 0))
            self._arb_zero_fill = int(arb.get("attempts_zero_fill", 0))
            self._arb_pnl = float(arb.get("realised_pnl_usd", 0.0))
            notional = float(arb.get("buy_notional_usd", 0.0) or 0.0)
            self._arb_buy_notional = notional
            slip = arb.get("slippage_bps")
            self._arb_slippage = [slip * notional, notional] if slip is not None and notional else [0.0, 0.0]
        carry = metrics.get("funding_carry")
        if carry:
            self._carry_reported = {k: carry.get(k) for k in ("current_delta", "target_delta", "delta_by_asset")}
        directional = metrics.get("directional")
        if directional:
            self._directional = {k: directional.get(k) for k in ("phase", "last_decision", "last_skip_reason")}
        for name, m in metrics.items():
            if "wins" in m and "losses" in m:
                self._closed[name] = [int(m["wins"]), int(m["losses"])]

    def closed_trade(self, strategy: str, pnl_usd: float) -> None:
        """A closed directional round trip, arbitrage attempt or carry pair."""
        outcome = trade_outcome(pnl_usd)
        if outcome:
            self._closed.setdefault(strategy, [0, 0])[0 if outcome > 0 else 1] += 1

    # -- snapshot --

    def system_health(self) -> dict:
        now = self.clock()
        minute = now // MINUTE_MS
        lat = sorted(self._latency)
        cumulative, buckets = 0, {}
        for bound, n in zip((*LATENCY_BUCKETS_MS, "+Inf"), self._latency_buckets, strict=True):
            cumulative += n
            buckets[str(bound)] = cumulative
        ops = dict(self.operations()) if self.operations is not None else {}
        skew = dict(self._skew_ms) | ops.pop("clock_skew_ms", {})
        return {
            "api_error_rate": {v: {"5m": s.rate(minute, 5), "24h": s.rate(minute, 24 * 60)}
                               for v, s in self._venues.items()},
            "api_requests": {v: {"total": s.total, "errors": s.errors,
                                 "last_ok_age_s": None if s.last_ok_ms is None else (now - s.last_ok_ms) / 1000}
                             for v, s in self._venues.items()},
            "trade_latency_ms": {"p50": percentile(lat, 50), "p99": percentile(lat, 99),
                                 "count": sum(self._latency_buckets), "sum": self._latency_sum,
                                 "buckets": buckets},
            "websocket": {name: {"connected": s.connected,
                                 "last_message_age_s": None if s.last_message_ms is None
                                 else (now - s.last_message_ms) / 1000}
                          for name, s in self._streams.items()},
            "module_status": {m: status for m, (status, _) in self._modules.items()},
            "clock_skew_ms": skew,
            "uptime_s": (now - self.started_ms) / 1000,
            "operations": ops,
        }

    def strategy_figures(self) -> dict:
        """Arbitrage and carry figures; the store-derived ones (funding, Sharpe, daily P&L) are added by the view."""
        current, target = carry_delta(self._carry_books.values())
        increments = [(b[0] - a[0], b[1] - a[1]) for a, b in pairwise(self._hedge_mtm)]
        wins = sum(c[0] for c in self._closed.values())
        losses = sum(c[1] for c in self._closed.values())
        return {
            "arbitrage": {
                "opportunities_detected": self._opportunities,
                "trades_executed": self._arb_trades,
                "zero_fill_attempts": self._arb_zero_fill,
                "average_profit_bps": average_profit_bps(self._arb_pnl, self._arb_buy_notional),
                "slippage_bps": self._arb_slippage[0] / self._arb_slippage[1] if self._arb_slippage[1] else None,
            },
            "delta_neutral": {
                "current_delta": current,
                "target_delta": target,
                "delta_by_asset": {a: b[0] + b[1] - (1 - b[2]) * b[0] for a, b in self._carry_books.items()},
                **(self._carry_reported or {}),
                "hedge_effectiveness": hedge_effectiveness([i[0] for i in increments], [i[1] for i in increments]),
            },
            "directional": self._directional,
            "win_rate_pct": win_rate(wins, losses),
            "win_rate_by_strategy": {s: win_rate(*c) for s, c in self._closed.items()},
        }

    def candles(self) -> dict[str, list[tuple[int, float, float, float, float]]]:
        return {m: list(series) for m, series in self._candles.items()}

    def module_outputs(self) -> dict[str, dict]:
        return {m: {"status": status, "output": output} for m, (status, output) in self._modules.items()}
