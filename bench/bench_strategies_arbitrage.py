"""Arbitrage `on_book` cost per top-of-book update (the strategy's share of book frame → order request).

Prints p50/p99 in µs for updates with no opportunity (the common case) and with one (two intents built).
Run: .venv/bin/python bench/bench_strategies_arbitrage.py
"""

from __future__ import annotations

import statistics
import time
from decimal import Decimal as D

from ate.config.strategies import ArbitrageConfig
from ate.model import Instrument, MarketKind
from ate.model.market import BookTicker
from ate.strategies.arbitrage import ArbitrageStrategy
from ate.strategies.base import SimpleContext

A, B = "binance:BTCUSDT", "backpack:BTC_USDC"
N = 20_000


def make_ctx() -> SimpleContext:
    ctx = SimpleContext(now_ms=1_000_000, instruments={
        A: Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, D("0.01"), D("0.00001"), D("0.00001"),
                      D("9000"), D("0.01"), D("1000000"), D("5")),
        B: Instrument("backpack", "BTC_USDC", "BTC", "USDC", MarketKind.SPOT, D("0.1"), D("0.00001"), D("0.00001"))})
    ctx.set_book("binance:USDCUSDT", "0.9997", "0.9999")
    for venue, asset, amount in (("binance", "USDT", "100000"), ("binance", "BTC", "1"), ("backpack", "BTC", "1"),
                                 ("backpack", "USDC", "100000")):
        ctx.set_balance(venue, asset, amount)
    return ctx


def run(opportunity: bool) -> list[float]:
    ctx = make_ctx()
    s = ArbitrageStrategy(ArbitrageConfig(min_attempt_interval_ms=0))
    ctx.set_book(B, "60300" if opportunity else "60010", "60320")
    asks = [D(60000) + D(i % 50) / 100 for i in range(N)]
    out = []
    for i in range(N):
        ctx.now_ms += 1
        ctx.books[A] = BookTicker("binance", "BTCUSDT", asks[i] - D(10), D(1), asks[i], D("0.8"), i, ctx.now_ms)
        ctx.books[B] = BookTicker("backpack", "BTC_USDC", ctx.books[B].bid, D("0.5"), ctx.books[B].ask, D(1), i,
                                  ctx.now_ms)
        t0 = time.perf_counter_ns()
        intents = s.on_book(A, ctx)
        out.append((time.perf_counter_ns() - t0) / 1000)
        if intents:
            s.attempt = None  # as if the attempt resolved at once, so every update may trade
        assert bool(intents) == opportunity
    return out


if __name__ == "__main__":
    for label, opp in (("no opportunity", False), ("opportunity (2 intents)", True)):
        xs = sorted(run(opp)[1000:])
        print(f"arbitrage on_book, {label}: p50 {statistics.median(xs):.2f} µs, "
              f"p99 {xs[int(len(xs) * 0.99)]:.2f} µs over {len(xs)} updates")
