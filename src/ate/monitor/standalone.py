"""`ate dashboard`: the operator API and dashboard over the store alone, read-only, while no engine runs."""

from __future__ import annotations

import asyncio
import signal

from rich.console import Console

from ate.config.models import EngineConfig
from ate.model import Mode
from ate.monitor.server import start_monitor
from ate.monitor.view import StoreView
from ate.store import Store


async def serve_store(cfg: EngineConfig, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set or SIGINT/SIGTERM arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    store = Store(cfg.store.url)
    # No heartbeat (no `health`): it vouches for a running engine, and this view has none.
    handle = await start_monitor(StoreView(store, shadow=cfg.mode is Mode.SHADOW), cfg.monitor)
    Console(stderr=True).print(f"dashboard (read-only, from {store.engine.url.render_as_string()}) on {handle.url}",
                               markup=False, highlight=False, soft_wrap=True)
    try:
        await stop.wait()
    finally:
        await handle.stop()
        store.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
