"""Tick-to-order latency of the engine's hot path, in process, on one core.

From a bookTicker frame arriving at the adapter (raw JSON bytes) through the venue's stream decoder, the
market data manager, the engine's feed, the TradingCore (signal engine bookkeeping, all three strategies),
the arbitrage strategy, the pre-trade risk check and the order manager (deterministic id, write-ahead to
the store) to the executor's `submit` — the moment the order request leaves for the venue client.

Each of N triggers refreshes the Binance book (and the USDT/USDC conversion market's), then times a Backpack frame whose bid crosses Binance's ask
(or the reverse, alternating so positions net out). The legs are then filled at the touch (outside the
timed region) so the next attempt may start. Run with the store on disk (SQLite WAL, synchronous=FULL: one
fsync per decision unit, both legs' write-ahead in it; the floor of one such commit on this disk is printed
first), with an in-memory SQLite store, and — for reference only — with no store at all.

One more line is an experiment, not the engine: the orders leave once their unit's writes are made, before
its commit's fsync (the "send while committing" path of docs/ledger.md, which needs client order ids reserved
in durable blocks and a strategy that rebuilds its decision from the venue's orders before it is durable). It
shows what that path would buy on this disk.

Each run also prints the thread's CPU time per trigger (mean over the whole dispatch): on a shared machine it
moves less than the wall-clock percentiles. `--no-store` runs only the path without a store (for profiling).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from ate.config import parse_config
from ate.data.candles import MINUTE_MS
from ate.engine import Engine
from ate.execution.executors import ShadowExecutor
from ate.model import Balance, Instrument, MarketKind
from ate.monitor.recorder import MetricsRecorder
from ate.sim.instruments import KNOWN
from ate.strategies.factory import build_strategies
from ate.trading.core import TradingCore
from ate.venues.backpack.parse import StreamDecoder as BackpackDecoder
from ate.venues.binance.parse import StreamDecoder as BinanceDecoder
from ate.venues.ws import CandleGapFiller, dispatch

N = int(next((a for a in sys.argv[1:] if a.isdigit()), 10_000))
START_MS = 1_773_705_600_000
MID = 70_000


class Clock:
    def __init__(self) -> None:
        self.now = START_MS

    def now_ms(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - the bench never sleeps
        raise RuntimeError("no sleeping in the bench")


class TimedExecutor:
    """The executor's `submit` is where the order leaves: the time is taken there. The touch fills it later,
    outside the timed region, as a venue's reply arrives after the send (a live executor's `submit` only
    starts the request): filling inline would book the first leg's fill before the second leg leaves."""

    def __init__(self, inner: ShadowExecutor) -> None:
        self.inner = inner
        self.sent: list[float] = []
        self.pending: list[tuple] = []

    def submit(self, order, instrument) -> None:
        self.sent.append(time.perf_counter())
        self.pending.append((order, instrument))

    def fill(self) -> None:
        pending, self.pending = self.pending, []
        for order, instrument in pending:
            self.inner.submit(order, instrument)

    def cancel(self, order) -> None:
        self.inner.cancel(order)


def binance_frame(i: int, bid: float, ask: float) -> bytes:
    return json.dumps({"stream": "btcusdt@bookTicker", "data": {
        "u": 1000 + i, "s": "BTCUSDT", "b": f"{bid:.2f}", "B": "2.00000", "a": f"{ask:.2f}", "A": "2.00000"}}).encode()


def basis_frame(i: int) -> bytes:
    return json.dumps({"stream": "usdcusdt@bookTicker", "data": {
        "u": 1000 + i, "s": "USDCUSDT", "b": "0.9999", "B": "900000", "a": "1.0000", "A": "900000"}}).encode()


def backpack_frame(i: int, ts_ms: int, bid: float, ask: float) -> bytes:
    return json.dumps({"stream": "bookTicker.BTC_USDC", "data": {
        "e": "bookTicker", "E": ts_ms * 1000, "s": "BTC_USDC", "a": f"{ask:.1f}", "A": "2.00", "b": f"{bid:.1f}",
        "B": "2.00", "u": str(1000 + i), "T": ts_ms * 1000}}).encode()


def build(store_url: str, write_ahead: bool = True) -> tuple[Engine, Clock, TimedExecutor]:
    cfg = parse_config({
        "mode": "paper", "run_id": "bench", "store": {"url": store_url}, "monitor": {"enabled": False},
        "risk_limits": {"capital_usd": 10_000_000, "max_position_size_usd": 1_000_000,
                        "max_orders_per_second": 100},
        "markets": {"primary": "binance:BTCUSDT", "binance": [{"symbol": "BTCUSDT", "kind": "spot"},
                                                              {"symbol": "BTCUSDT", "kind": "perp"},
                                                              {"symbol": "USDCUSDT", "kind": "spot"}],
                    "backpack": [{"symbol": "BTC_USDC", "kind": "spot"}]},
        "strategies": {"arbitrage": {"min_attempt_interval_ms": 0, "max_notional": 700}},
    })
    clock = Clock()
    engine = Engine(cfg, clock=clock, monitor=False)
    engine.recorder = MetricsRecorder(clock=clock.now_ms)
    engine.store.claim_engine()  # as Engine.start does
    instruments = [dataclasses.replace(KNOWN["binance-spot", "BTCUSDT"], venue="binance"),
                   dataclasses.replace(KNOWN["binance-usdm", "BTCUSDT"], venue="binance_usdm"),
                   dataclasses.replace(KNOWN["backpack", "BTC_USDC"], venue="backpack", max_qty=Decimal(1000)),
                   # the arbitrage's USDT/USDC basis (its conversion market), on Binance's spot filters
                   Instrument("binance", "USDCUSDT", "USDC", "USDT", MarketKind.SPOT, Decimal("0.0001"),
                              Decimal(1), Decimal(1), Decimal(9_000_000), Decimal(5), Decimal(10_000_000))]
    engine.instruments = {i.key: i for i in instruments}
    for i in instruments:  # what Engine.start does from each venue's REST ticker
        engine.guard.set_reference((i.venue, i.symbol), Decimal(1 if i.base == "USDC" else MID), 0, "bench")
    engine.core = core = TradingCore(cfg, instruments=instruments, strategies=build_strategies(cfg),
                                     clock=clock.now_ms, state=engine.store,
                                     store=engine.store if write_ahead else None)
    timed = TimedExecutor(ShadowExecutor(core.books.get, lambda venue: Decimal(10), core.on_order_update,
                                         clock.now_ms))
    core.attach(timed)
    for venue, quote in (("binance", "USDT"), ("backpack", "USDC")):
        core.set_balances(venue, {quote: Balance(quote, Decimal(10**8), Decimal(0)),
                                  "BTC": Balance("BTC", Decimal(1000), Decimal(0))})
    return engine, clock, timed


def run(label: str, store_url: str, write_ahead: bool = True, send_before_fsync: bool = False) -> None:
    engine, clock, timed = build(store_url, write_ahead)
    if send_before_fsync:  # the experiment: the outbox's sends become the unit's last work before its commit
        engine.store.after_commit = engine.store.before_commit
    bn, bp = BinanceDecoder("binance", clock.now_ms), BackpackDecoder("backpack", clock.now_ms)
    gaps = CandleGapFiller(None, MINUTE_MS, None, None)  # type: ignore[arg-type]  # no candles in this feed
    data = engine.data
    first: list[float] = []
    both: list[float] = []
    cpu: list[float] = []  # the thread's CPU time over the whole dispatch of the trigger: steady under load
    for i in range(N + 200):  # the first 200 warm up caches and the allocator
        clock.now += 1000
        dispatch(bn.decode(basis_frame(3 * i)), data, gaps)
        dispatch(bn.decode(binance_frame(3 * i + 1, MID - 0.01, MID + 0.01)), data, gaps)
        # direction alternates: Backpack bid 60 bps above Binance's ask, or its ask 60 bps below Binance's bid
        frame = (backpack_frame(3 * i + 2, clock.now, MID * 1.006, MID * 1.006 + 0.1) if i % 2 == 0 else
                 backpack_frame(3 * i + 2, clock.now, MID * 0.994 - 0.1, MID * 0.994))
        n0 = len(timed.sent)
        c0 = time.thread_time()
        t0 = time.perf_counter()
        dispatch(bp.decode(frame), data, gaps)
        c1 = time.thread_time()
        sent = timed.sent[n0:]
        timed.fill()
        if len(sent) != 2:
            raise SystemExit(f"trigger {i}: {len(sent)} orders left instead of 2 "
                             f"({engine.core.by_name['arbitrage'].metrics()['skipped']}, "
                             f"{engine.core.orders.stats.rejected_by_risk})")
        if i >= 200:
            first.append(sent[0] - t0)
            both.append(sent[1] - t0)
            cpu.append(c1 - c0)
    engine.store.close()
    for name, xs in (("first leg", first), ("both legs", both)):
        q = statistics.quantiles(xs, n=100)
        print(f"{label:<28} {name:<9}: p50 {q[49] * 1e6:8.1f} µs   p99 {q[98] * 1e6:8.1f} µs   "
              f"max {max(xs) * 1e6:8.1f} µs   ({len(xs)} triggers)")
    print(f"{label:<28} {'cpu':<9}: {statistics.fmean(cpu) * 1e6:8.1f} µs of thread CPU time per trigger (mean; the "
          "whole dispatch, both legs and the rest of the book)")


def fsync_floor(path: Path) -> None:
    """What one SQLite commit at synchronous=FULL costs on this disk right now (a shared disk varies by 10×
    within minutes): the floor under the durable figures, printed beside them."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (a INTEGER)")
    xs = []
    for i in range(500):
        t0 = time.perf_counter()
        db.execute("INSERT INTO t VALUES (?)", (i,))
        db.commit()
        xs.append(time.perf_counter() - t0)
    db.close()
    q = statistics.quantiles(xs, n=100)
    print(f"{'raw sqlite3 commit (FULL)':<28} {'floor':<9}: p50 {q[49] * 1e6:8.1f} µs   p99 {q[98] * 1e6:8.1f} µs   "
          f"max {max(xs) * 1e6:8.1f} µs   ({len(xs)} commits)")


def main() -> None:
    if "--no-store" in sys.argv:  # the path alone, for profiling its CPU work quickly
        run("no store (path only)", "sqlite:///:memory:", write_ahead=False)
        return
    with tempfile.TemporaryDirectory() as tmp:
        fsync_floor(Path(tmp) / "floor.db")
        run("store on disk (fsync)", f"sqlite:///{Path(tmp) / 'bench.db'}")
        run("experiment: send, then fsync", f"sqlite:///{Path(tmp) / 'experiment.db'}", send_before_fsync=True)
    run("store in memory", "sqlite:///:memory:")
    # Not a valid configuration (no write-ahead, no ledger): what the path costs without the store.
    run("no store (path only)", "sqlite:///:memory:", write_ahead=False)


if __name__ == "__main__":
    main()
