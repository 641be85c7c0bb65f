"""Hot-path cost of MetricsRecorder calls and the cost of building a metrics snapshot. Prints figures."""

from __future__ import annotations

import time

from ate.monitor.recorder import MetricsRecorder


def per_call_ns(fn, n: int = 200_000) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - t0) / n


def main() -> None:
    rec = MetricsRecorder()
    for i in range(8):
        rec.request(f"venue{i}", ok=True)
        rec.stream_message(f"stream{i}")
    print(f"request(venue, ok)        {per_call_ns(lambda: rec.request('venue1', True)):8.0f} ns/call")
    print(f"latency(ms)               {per_call_ns(lambda: rec.latency(12.5)):8.0f} ns/call")
    print(f"stream_message(stream)    {per_call_ns(lambda: rec.stream_message('stream3')):8.0f} ns/call")
    print(f"arbitrage_opportunity()   {per_call_ns(rec.arbitrage_opportunity):8.0f} ns/call")
    print(f"module(name, status)      {per_call_ns(lambda: rec.module('garch', 'OK')):8.0f} ns/call")
    for i in range(721):
        rec.carry_mtm(float(i), 0.0)
    t0 = time.perf_counter()
    n = 500
    for _ in range(n):
        rec.system_health()
        rec.strategy_figures()
    print(f"recorder snapshot (2048 latency samples, 721 hedge samples) {(time.perf_counter() - t0) / n * 1e6:8.0f} µs")


if __name__ == "__main__":
    main()
