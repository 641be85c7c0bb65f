"""Top-of-book updates per second through the simulator's matching core (one process, one core).

Prints three figures: the bare ``MatchingCore.update_book`` path fed from a precomputed day of
BTCUSDT 1m intrabar paths (with a resting order far from the market, so the cross check runs), and a
``Replayer`` run of the same day (path, public trade and candle close per update) twice: with a book
listener (a face watching: every update applied) and with nothing watching (each run skimmed to its net
effect, as in a backtest between orders), stepped to each candle close as the backtest runner does.
Figures are per CPU second (the machine may be shared). Run: .venv/bin/python bench/bench_sim_core.py
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from ate.data.loaders import load_candles
from ate.model import OrderType, Side
from ate.sim.clock import ManualClock
from ate.sim.core import MatchingCore
from ate.sim.instruments import BINANCE_SPOT, KNOWN
from ate.sim.replay import POINTS, Replayer, book_path

DATA = Path(__file__).resolve().parents[1] / "data" / "binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"


def _world() -> tuple[MatchingCore, ManualClock]:
    clock = ManualClock()
    core = MatchingCore(clock.now_ms)
    core.add_market(KNOWN[(BINANCE_SPOT, "BTCUSDT")], Decimal("0.001"), Decimal("0.001"))
    core.add_account("bench")
    core.deposit("bench", BINANCE_SPOT, "USDT", Decimal(1_000_000))
    return core, clock


def bench_update_book(day, repeat: int = 40) -> float:
    core, _ = _world()
    m = core.market(BINANCE_SPOT, "BTCUSDT")
    ts, bid, ask, size, _ = book_path(m, day, 0.2, 0.1, 0.001)
    core.update_book(m, bid[0], ask[0], size[0], size[0], ts[0])
    core.place_order("bench", BINANCE_SPOT, "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.01"),
                     Decimal("1000.00"))
    rows = [(b, a, size[i // POINTS], t) for i, (b, a, t) in enumerate(zip(bid, ask, ts, strict=True))]  # size per candle
    update = core.update_book
    t0 = time.process_time()
    for _ in range(repeat):
        for b, a, s, t in rows:
            update(m, b, a, s, s, t)
    elapsed = time.process_time() - t0
    return len(rows) * repeat / elapsed


def bench_replay(day, watched: bool) -> tuple[float, float]:
    core, clock = _world()
    if watched:
        core.listen_book(lambda m: None)
    rep = Replayer(core, clock)
    t0 = time.process_time()
    rep.add_candles(core.market(BINANCE_SPOT, "BTCUSDT"), day, spread_bps=0.2)
    prepared = time.process_time()
    n = sum(rep.advance_to(c.close_ms) for c in day)  # a step per candle close, as the backtest runner does
    done = time.process_time()
    return n / (done - prepared), done - t0


def main() -> None:
    day = load_candles(DATA)[:1440]
    print(f"update_book: {bench_update_book(day):,.0f} top-of-book updates/s")
    for watched in (True, False):
        rate, total = bench_replay(day, watched)
        print(f"replay of one day of 1m BTCUSDT (1440 candles), {'watched' if watched else 'nothing watching'}: "
              f"{rate:,.0f} events/s, {total * 1000:.0f} ms in all")


if __name__ == "__main__":
    main()
