"""Cost of the market-data filter on the book path: MarketDataManager.on_book with and without the price guard."""

from __future__ import annotations

import time
from decimal import Decimal

from ate.data.manager import MarketDataManager
from ate.data.price_guard import PriceGuard
from ate.model.market import BookTicker

N = 200_000
MID = Decimal("70000.00")


def books() -> list[BookTicker]:
    out = []
    for i in range(N):
        m = MID + Decimal(i % 50) - 25
        out.append(BookTicker("binance", "BTCUSDT", m - Decimal("0.01"), Decimal(1), m + Decimal("0.01"),
                              Decimal(1), i + 1, i))
    return out


def run(label: str, manager: MarketDataManager, feed: list[BookTicker]) -> None:
    t0 = time.perf_counter()
    for b in feed:
        manager.on_book(b)
    dt = time.perf_counter() - t0
    print(f"{label:<24}: {dt / N * 1e6:6.2f} µs per book ({N} books, {sum(manager.quarantined.values())} quarantined)")


def main() -> None:
    feed = books()
    run("no guard (10x jump)", MarketDataManager(), feed)
    guard = PriceGuard()
    guard.set_reference(("binance", "BTCUSDT"), MID, 0, "bench")
    run("price guard", MarketDataManager(guard=guard), feed)


if __name__ == "__main__":
    main()
