"""Cost of one metrics snapshot and one dashboard frame over a store holding 30 days of minute equity and
2,000 fills today (the P&L split reads them), with 4 markets × 360 candles on the price chart; and the size
of one dashboard frame (sent every `monitor.stream_interval_s` to each open page)."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from decimal import Decimal

from ate.model import Fill, Instrument, MarketKind, Position, Side
from ate.monitor.api import dashboard_payload
from ate.monitor.recorder import CANDLES, MetricsRecorder
from ate.monitor.view import StoreView
from ate.store import Store
from ate.store import schema as t

NOW_MS = 1_773_144_000_000
FILLS = 2_000
MARKETS = ("binance:BTCUSDT", "backpack:BTC_USDC", "binance_usdm:BTCUSDT", "binance:ETHUSDT")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.db")
        start = NOW_MS - 30 * 86_400_000
        with store.engine.begin() as c:
            c.execute(t.equity_snapshots.insert(), [
                {"ts_ms": start + i * 60_000, "equity": Decimal(10_000) + Decimal(i % 97) / 7, "flows": Decimal(0),
                 "shadow": False} for i in range(30 * 1440)])
        today = NOW_MS - NOW_MS % 86_400_000
        for i in range(FILLS):
            store.add_fill(Fill("binance", "BTCUSDT", f"t{i}", f"c{i}", f"v{i}", Side.BUY if i % 2 else Side.SELL,
                                Decimal("0.001"), Decimal("60000") + i % 50, Decimal("0.06"), "USDT", False,
                                today + i * 1000, "arbitrage"))
        store.save_positions([Position("binance", "BTCUSDT", Decimal(0), Decimal(0), mark_price=Decimal(60010))])
        instruments = {m: Instrument(*m.split(":"), "BTC", "USDT", MarketKind.SPOT, Decimal("0.01"),
                                     Decimal("0.00001")) for m in MARKETS}
        rec = MetricsRecorder(lambda: NOW_MS)
        for m in MARKETS:
            for i in range(CANDLES):
                rec.candle(m, NOW_MS - (CANDLES - i) * 60_000, 60000.0, 60010.0, 59990.0, 60005.0)
        print(f"dashboard frame    {len(json.dumps(await dashboard_payload(StoreView(store, recorder=rec, clock=lambda: NOW_MS, instruments=instruments)))):8,d} bytes")
        for ttl in (0.0, 10.0):
            view = StoreView(store, recorder=rec, clock=lambda: NOW_MS, equity_ttl_s=ttl, instruments=instruments)
            for label, call in (("metrics_snapshot", view.metrics_snapshot),
                                ("dashboard frame", lambda v=view: dashboard_payload(v))):
                await call()
                n = 10
                t0 = time.perf_counter()
                for _ in range(n):
                    await call()
                ms = (time.perf_counter() - t0) / n * 1000
                print(f"{label:18s} {ms:8.1f} ms  (43,200 equity rows, {FILLS:,} fills today, equity cache "
                      f"{'off' if ttl == 0 else 'warm'})")
        store.close()


if __name__ == "__main__":
    asyncio.run(main())
