"""Cost of the fault decisions on the simulator's per-message paths (one process, one core).

Prints decisions per second for the per-frame and per-book-update questions a face asks, with no
fault configured (the fast path every run pays) and with every rate of the catalogue set, plus the
cost of poisoning one depth message.
Run: .venv/bin/python bench/bench_sim_faults.py
"""

from __future__ import annotations

import time

from ate.config.sim import FaultSpec
from ate.sim.faults import Faults, poison_book

N = 200_000
ALL = FaultSpec(stale=0.01, depth_gap=0.01, crossed_book=0.01, locked_book=0.01, zero_price=0.01,
                negative_price=0.01, nan_price=0.01, ws_drop=0.0, ws_stall=0.0, ws_duplicate=0.01,
                ws_reorder=0.01, ws_malformed=0.01)


def _rate(label: str, fn) -> None:
    t = time.perf_counter()
    for _ in range(N):
        fn()
    dt = time.perf_counter() - t
    print(f"{label}: {N / dt:,.0f}/s ({dt / N * 1e9:,.0f} ns each)")


def main() -> None:
    for name, spec in (("no faults", FaultSpec()), ("every rate set", ALL)):
        f = Faults(spec, 1)
        _rate(f"{name}: ws_fault per frame", lambda f=f: f.ws_fault("binance-spot"))
        _rate(f"{name}: stale + book_fault per book update",
              lambda f=f: (f.stale("binance-spot"), f.book_fault("binance-spot", "BTCUSDT")))
    depth = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 1, "u": 1,
             "b": [[f"{104000 - i / 10:.1f}", "0.5"] for i in range(20)],
             "a": [[f"{104000.1 + i / 10:.1f}", "0.5"] for i in range(20)]}
    _rate("poison_book on a 20-level depth diff", lambda: poison_book(depth, "crossed_book"))


if __name__ == "__main__":
    main()
