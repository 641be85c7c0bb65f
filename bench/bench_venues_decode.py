"""WebSocket bookTicker decode + dispatch throughput on one core (target >= 200,000 msg/s).

Frames are pre-encoded bytes as they arrive from the socket; each is decoded into a typed BookTicker
(Decimal prices) and dispatched through the same ``dispatch`` the live streams use, to a counting sink
and, separately, to the MarketDataManager (validation + store + push).
"""

from __future__ import annotations

import json
import time

from ate.data.candles import MINUTE_MS
from ate.data.manager import MarketDataManager
from ate.venues.backpack.parse import StreamDecoder as BackpackDecoder
from ate.venues.binance.parse import StreamDecoder as BinanceDecoder
from ate.venues.ws import CandleGapFiller, dispatch

N = 200_000


def binance_frames(n: int) -> list[bytes]:
    return [json.dumps({"stream": "btcusdt@bookTicker", "data": {
        "u": 400900217 + i, "s": "BTCUSDT", "b": f"{60000 + i % 50}.12000000", "B": "31.21000000",
        "a": f"{60000 + i % 50}.13000000", "A": "40.66000000"}}).encode() for i in range(n)]


def backpack_frames(n: int) -> list[bytes]:
    return [json.dumps({"stream": "bookTicker.BTC_USDC", "data": {
        "e": "bookTicker", "E": 1735689600000000 + i, "s": "BTC_USDC", "a": f"{60000 + i % 50}.2",
        "A": "0.51", "b": f"{60000 + i % 50}.1", "B": "0.73", "u": str(111 + i), "T": 1735689600000000 + i}}
    ).encode() for i in range(n)]


class CountingSink:
    def __init__(self) -> None:
        self.n = 0

    def on_book(self, book) -> None:
        self.n += 1


def run(name: str, decoder, frames: list[bytes], sink) -> float:
    gaps = CandleGapFiller(None, MINUTE_MS, None, None)  # type: ignore[arg-type]  # no candles in this feed
    decode = decoder.decode
    start = time.perf_counter()
    for f in frames:
        dispatch(decode(f), sink, gaps)
    elapsed = time.perf_counter() - start
    rate = len(frames) / elapsed
    print(f"{name:<42} {rate:>12,.0f} msg/s  ({elapsed * 1e6 / len(frames):.2f} µs/msg)")
    return rate


def main() -> None:
    clock = lambda: 1_735_689_600_000  # noqa: E731 - receive-time stamp for spot frames
    bn, bp = binance_frames(N), backpack_frames(N)
    for _ in range(2):  # second round is the steady-state figure
        print("---")
        run("binance spot bookTicker -> counting sink", BinanceDecoder("binance", clock), bn, CountingSink())
        run("backpack bookTicker -> counting sink", BackpackDecoder("backpack"), bp, CountingSink())
        run("binance spot bookTicker -> MarketDataManager", BinanceDecoder("binance", clock), bn,
            MarketDataManager())
        run("backpack bookTicker -> MarketDataManager", BackpackDecoder("backpack"), bp, MarketDataManager())


if __name__ == "__main__":
    main()
