"""Heartbeat to a healthchecks.io-style URL, and the dead-man check on the engine's own venues.

Each beat pings `url` when the engine is ready and `url/fail` (reasons in the body) when it is not; the
receiver alerts when pings stop. The dead-man check alerts when no venue request has succeeded for N
minutes. Time and sleeping are injectable so tests drive beats without waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from ate.model import Severity
from ate.monitor.alerts import Alert, Notifier
from ate.monitor.view import EngineView

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BeatResult:
    ready: bool
    delivered: bool
    status: int | None = None
    error: str | None = None


class Heartbeat:
    def __init__(self, view: EngineView, session: aiohttp.ClientSession, *, url: str | None,
                 interval_s: float = 60.0, dead_man_minutes: float | None = None,
                 notifier: Notifier | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.view = view
        self.session = session
        self.url = url.rstrip("/") if url else None
        self.interval_s = interval_s
        self.dead_man_minutes = dead_man_minutes
        self.notifier = notifier
        self.sleep = sleep

    async def beat(self) -> BeatResult | None:
        """One heartbeat and dead-man check; never raises for network trouble."""
        ready, reasons = await self.view.readiness()
        if self.dead_man_minutes is not None:
            await self.check_dead_man()
        if self.url is None:
            return None
        url = self.url if ready else f"{self.url}/fail"
        try:
            async with self.session.post(url, data="; ".join(reasons).encode()) as resp:
                ok = resp.status < 300
                if not ok:
                    log.warning("heartbeat answered HTTP %s", resp.status)
                return BeatResult(ready, ok, resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("heartbeat failed: %s", type(exc).__name__)
            return BeatResult(ready, False, error=type(exc).__name__)

    def unreachable_venues(self, health: dict) -> list[str]:
        """Venues with no successful request for `dead_man_minutes` (or none since start, once that long up)."""
        limit_s = (self.dead_man_minutes or 0) * 60
        out = []
        for venue, r in health.get("api_requests", {}).items():
            age = r["last_ok_age_s"]
            if (age if age is not None else health.get("uptime_s") or 0) >= limit_s:
                out.append(venue)
        return out

    async def check_dead_man(self) -> list[str]:
        health = (await self.view.metrics_snapshot())["system_health"]
        venues = self.unreachable_venues(health)
        if venues and self.notifier is not None:
            for venue in venues:
                self.notifier.alert(Alert("venue_unreachable",
                                          f"no successful request to {venue} for {self.dead_man_minutes:g} min",
                                          Severity.CRITICAL, key=venue))
        return venues

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception:  # a monitoring bug must not end the heartbeat loop silently
                log.exception("heartbeat iteration failed")
            await self.sleep(self.interval_s)
