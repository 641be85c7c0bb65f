"""The lifecycle the REST venue clients share: clock-skew measurement at start and periodically after."""

from __future__ import annotations

import asyncio
import contextlib

from ate.venues.errors import VenueError


class ClockSyncedClient:
    """Mixin: subclasses provide `clock`, `rest`, `clock_sync_every_s` and `async sync_clock()`."""

    _sync_task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.sync_clock()
        self._sync_task = asyncio.create_task(self._resync())

    async def _resync(self) -> None:
        while True:
            await self.clock.sleep(self.clock_sync_every_s)
            with contextlib.suppress(VenueError):  # a failed re-measure keeps the last offset
                await self.sync_clock()

    async def close(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        await self.rest.close()
