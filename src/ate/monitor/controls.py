"""The operator's controls over a running engine, on top of the risk layer's kill switch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ate.risk.killswitch import KillSwitch
from ate.risk.state import read_state


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
        await self.kill_switch.activate(reason, who)

    async def resume(self, who: str) -> None:
        await self.kill_switch.resume(who)

    async def close_all(self, who: str) -> None:
        await self._close_all(who)

    async def readiness(self) -> tuple[bool, list[str]]:
        return await self._readiness()
