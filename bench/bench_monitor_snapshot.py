"""Cost of one metrics snapshot and one dashboard frame over a store holding 30 days of minute equity."""

from __future__ import annotations

import asyncio
import tempfile
import time
from decimal import Decimal

from ate.monitor.api import dashboard_payload
from ate.monitor.recorder import MetricsRecorder
from ate.monitor.view import StoreView
from ate.store import Store
from ate.store import schema as t

NOW_MS = 1_773_144_000_000


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.db")
        start = NOW_MS - 30 * 86_400_000
        with store.engine.begin() as c:
            c.execute(t.equity_snapshots.insert(), [
                {"ts_ms": start + i * 60_000, "equity": Decimal(10_000) + Decimal(i % 97) / 7, "flows": Decimal(0),
                 "shadow": False} for i in range(30 * 1440)])
        for ttl in (0.0, 10.0):
            view = StoreView(store, recorder=MetricsRecorder(lambda: NOW_MS), clock=lambda: NOW_MS,
                             equity_ttl_s=ttl)
            for label, call in (("metrics_snapshot", view.metrics_snapshot),
                                ("dashboard frame", lambda v=view: dashboard_payload(v))):
                await call()
                n = 10
                t0 = time.perf_counter()
                for _ in range(n):
                    await call()
                ms = (time.perf_counter() - t0) / n * 1000
                print(f"{label:18s} {ms:8.1f} ms  (43,200 equity rows, equity cache {'off' if ttl == 0 else 'warm'})")
        store.close()


if __name__ == "__main__":
    asyncio.run(main())
