"""`ate dashboard`: the operator API and dashboard over the store alone, read-only, while no engine runs."""

from __future__ import annotations

import asyncio
import signal

from rich.console import Console

from ate.config.models import EngineConfig
from ate.monitor.recorder import Clock, wall_ms
from ate.monitor.server import start_monitor
from ate.monitor.view import ClockKind, StoreView
from ate.store import Store


def store_clock(cfg: EngineConfig, store: Store) -> tuple[Clock, ClockKind, str | None]:
    """The clock the stored records were stamped by. An engine on simulated venues stamps them with the
    simulator's clock, which stopped with it: its time is then the newest record's, not the wall clock's
    (which would put "today" on another day than the data)."""
    if cfg.sim is None or not (cfg.venues.binance.simulated or cfg.venues.backpack.simulated):
        return wall_ms, "wall", None

    def newest_record() -> int:
        newest = store.events(limit=1)
        return newest[0].ts_ms if newest else wall_ms()

    return newest_record, "simulated", "the simulator stopped with the engine: time of the newest record"


async def serve_store(cfg: EngineConfig, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set or SIGINT/SIGTERM arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    store = Store(cfg.store.url)
    # No heartbeat: it vouches for a running engine (the engine's observer sends it), and this view has none.
    clock, kind, note = store_clock(cfg, store)
    handle = await start_monitor(StoreView(store, mode=cfg.mode, clock=clock, clock_kind=kind, clock_note=note),
                                 cfg.monitor)
    Console(stderr=True).print(f"dashboard (read-only, from {store.engine.url.render_as_string()}) on {handle.url}",
                               markup=False, highlight=False, soft_wrap=True)
    try:
        await stop.wait()
    finally:
        await handle.stop()
        store.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
