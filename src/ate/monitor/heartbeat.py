"""Heartbeat to a healthchecks.io-style URL, carrying the engine's state.

Each beat pings `url` when the engine is OK and `url/fail` when it is DEGRADED or HALTED, with the state
and its reasons as the body ("DEGRADED: no market data from backpack for 75 s"); the receiver alerts when
pings stop, which is what catches a process that is gone. The state comes from the dead-man (wall
clock); sleeping is injectable so tests drive beats without waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from ate.monitor.deadman import Health

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BeatResult:
    state: str
    delivered: bool
    status: int | None = None
    error: str | None = None


class Heartbeat:
    def __init__(self, session: aiohttp.ClientSession, health: Callable[[], Health], *, url: str,
                 interval_s: float = 60.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.session = session
        self.health = health
        self.url = url.rstrip("/")
        self.interval_s = interval_s
        self.sleep = sleep

    async def beat(self) -> BeatResult:
        """One heartbeat; never raises for network trouble."""
        health = self.health()
        url = self.url if health.state == "OK" else f"{self.url}/fail"
        try:
            async with self.session.post(url, data=health.line().encode()) as resp:
                ok = resp.status < 300
                if not ok:
                    log.warning("heartbeat answered HTTP %s", resp.status)
                return BeatResult(health.state, ok, resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("heartbeat failed: %s", type(exc).__name__)
            return BeatResult(health.state, False, error=type(exc).__name__)

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception:  # a monitoring bug must not end the heartbeat loop silently
                log.exception("heartbeat iteration failed")
            await self.sleep(self.interval_s)
