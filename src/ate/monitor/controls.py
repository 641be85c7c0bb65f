"""The operator's controls over a running engine, on top of the risk layer's kill switch."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from ate.model import TradingState
from ate.risk.killswitch import KillSwitch, write_kill_file
from ate.risk.state import read_state

log = logging.getLogger(__name__)


class RiskControls:
    """`Controls` for `StoreView(controls=...)`: kill and resume go through `KillSwitch` (HALTED persisted,
    orders cancelled); close-all and readiness are the engine's own coroutines."""

    def __init__(self, kill_switch: KillSwitch, *, close_all: Callable[[str], Awaitable[object]],
                 readiness: Callable[[], Awaitable[tuple[bool, list[str]]]]) -> None:
        self.kill_switch = kill_switch
        self._close_all = close_all
        self._readiness = readiness

    async def trading_state(self) -> dict:
        # The persisted record is the truth (another process may have run `ate kill`).
        return await asyncio.to_thread(read_state, self.kill_switch.keeper.store)

    async def kill(self, reason: str, who: str) -> None:
        # The path `ate kill` takes: the kill file first, so the halt outlives this process dying mid-way.
        try:
            write_kill_file(self.kill_switch.path, reason, who, int(time.time() * 1000))
        except OSError as exc:  # the store's HALTED still stops trading; the file is the belt to its braces
            log.error("kill file not written: %s", exc)
        await self.kill_switch.activate(reason, who)

    async def reduce(self, reason: str, who: str) -> bool:
        """REDUCING (no new entries, exits allowed); False when already REDUCING or HALTED (never loosened)."""
        keeper = self.kill_switch.keeper
        keeper.refresh()  # another process may have halted us
        return keeper.state is TradingState.ACTIVE and keeper.set(TradingState.REDUCING, who, reason)

    async def resume(self, who: str) -> None:
        await self.kill_switch.resume(who)

    async def close_all(self, who: str) -> None:
        await self._close_all(who)

    async def readiness(self) -> tuple[bool, list[str]]:
        return await self._readiness()
