"""Pre-trade check latency on the hot path (prints figures; no assertions).

    .venv/bin/python bench/bench_risk_pretrade.py
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal

import structlog

from ate.config.risk import CanaryConfig, CapitalStagesConfig, RiskLimits
from ate.model import Instrument, MarketKind, Mode, OrderIntent, Purpose, Side
from ate.risk import PreTradeChecker, limits_in_force

D = Decimal
SPOT = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, tick_size=D("0.01"),
                  step_size=D("0.00001"), min_qty=D("0.00001"), min_notional=D("5"))


def run(label: str, intent: OrderIntent, n: int = 100_000, position: str = "0.01") -> None:
    now = [1_764_028_800_000]
    # far above any rate limit: the figure is the check itself, not rejections by the rate window
    limits = limits_in_force(Mode.PAPER, RiskLimits(max_orders_per_second=1e9), CanaryConfig(),
                             CapitalStagesConfig(), None)
    checker = PreTradeChecker(limits, lambda: now[0])
    checker.update_mark(SPOT.key, D("50000"), now[0])
    checker.set_position(SPOT, D(position))
    samples = []
    for i in range(n):
        now[0] += 1
        checker.update_mark(SPOT.key, D("50000"), now[0])  # the data manager's steady flow of trusted marks
        t0 = time.perf_counter_ns()
        v = checker.check(intent, SPOT)
        samples.append(time.perf_counter_ns() - t0)
        if v.approved and i % 64 == 0:  # keep pending exposure from filling the position cap
            checker.on_order_closed(SPOT.key, intent.side, D(1_000_000))
        elif v.approved:
            checker.on_order_closed(SPOT.key, intent.side, v.intent.qty)
    samples.sort()
    print(f"{label:<28} {v.decision.value:<8} median {samples[n // 2] / 1000:6.2f} µs   "
          f"p99 {samples[int(n * 0.99)] / 1000:6.2f} µs   max {samples[-1] / 1000:8.2f} µs")


BP = Instrument("backpack", "BTC_USDC", "BTC", "USDC", MarketKind.SPOT, tick_size=D("0.1"),
                step_size=D("0.0001"), min_qty=D("0.0001"), min_notional=D("1"))


def run_group(label: str, qty: str, n: int = 50_000) -> None:
    """Both legs of an arbitrage pair through check_group (one call per pair)."""
    now = [1_764_028_800_000]
    limits = limits_in_force(Mode.PAPER, RiskLimits(max_orders_per_second=1e9), CanaryConfig(),
                             CapitalStagesConfig(), None)
    checker = PreTradeChecker(limits, lambda: now[0])
    legs = [OrderIntent("binance", "BTCUSDT", Side.BUY, D(qty), D("49990"), "b", group="g"),
            OrderIntent("backpack", "BTC_USDC", Side.SELL, D(qty), D("50010"), "b", group="g")]
    samples = []
    for _ in range(n):
        now[0] += 1
        checker.update_mark(SPOT.key, D("50000"), now[0])
        checker.update_mark(BP.key, D("50000"), now[0])
        t0 = time.perf_counter_ns()
        v = checker.check_group(legs, [SPOT, BP])
        samples.append(time.perf_counter_ns() - t0)
        for leg, inst in zip(v.intents, (SPOT, BP), strict=True):
            checker.on_order_closed(inst.key, leg.side, leg.qty)
    samples.sort()
    print(f"{label:<28} {v.decision.value:<8} median {samples[n // 2] / 1000:6.2f} µs   "
          f"p99 {samples[int(n * 0.99)] / 1000:6.2f} µs   max {samples[-1] / 1000:8.2f} µs")


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # as in production
    run("approve (limit entry)", OrderIntent("binance", "BTCUSDT", Side.BUY, D("0.001"), D("49990.123"), "b"))
    run("trim (single-trade cap)", OrderIntent("binance", "BTCUSDT", Side.BUY, D("0.5"), D("49990"), "b"))
    run("approve (reduce-only exit)", OrderIntent("binance", "BTCUSDT", Side.SELL, D("0.001"), D("50010"), "b",
                                                  Purpose.EXIT, reduce_only=True))
    run("reject (price deviation)", OrderIntent("binance", "BTCUSDT", Side.BUY, D("0.001"), D("60000"), "b"))
    run_group("pair approve (2 legs)", "0.001")
    run_group("pair trim (single-trade cap)", "0.5")


if __name__ == "__main__":
    main()
