"""What a running engine needs so the operator can rely on it, wired in one place: the alert path (notifier
fed by the events table), venue pauses that survive restarts, the wall-clock dead-man and the heartbeat
carrying its state, and the venue figures the metrics expose. The engine creates one, calls it at the points named below, and never needs
to know how alerts travel.

    obs = EngineObserver(cfg, store, event_ms=clock.now_ms, wall_ms=wall.now_ms)
    await obs.start_alerts()          # first (with the heartbeat): a ban being waited out must reach the phone
    obs.startup.enter(phase)          # at each start-up phase (heartbeat, status and dashboard show it)
    obs.attach_venues(clients)        # before any venue request
    obs.start_deadman(venues)         # once streams run; obs.market_data(venue) per message
    ...
    await obs.stop_watching()         # when stopping begins
    await obs.stop()                  # last: hands over the final events
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping
from typing import Any

from ate.config import EngineConfig
from ate.model import EngineEvent, Severity
from ate.monitor.alert_feed import AlertFeed
from ate.monitor.alerts import EXTERNAL_KINDS, Notifier
from ate.monitor.background import Background
from ate.monitor.deadman import DeadMan, Health, halted
from ate.monitor.heartbeat import Heartbeat
from ate.monitor.pauses import PauseBook
from ate.monitor.recorder import wall_ms
from ate.monitor.startup import StartupState
from ate.risk.events import MODULE_STATUS

DRAIN_S = 5.0
COUNTED_EVENTS = ("reconciliation", *EXTERNAL_KINDS)


class EngineObserver:
    def __init__(self, cfg: EngineConfig, store: Any, *, event_ms: Callable[[], int],
                 wall_ms: Callable[[], int] = wall_ms, env: Mapping[str, str] | None = None) -> None:
        self.cfg = cfg.monitor
        self.store = store
        self.event_ms = event_ms
        self.notifier = Notifier.from_config(self.cfg.alerts, os.environ if env is None else env)
        self.feed = AlertFeed(store, self.notifier, poll_s=self.cfg.alerts.poll_s)
        self.pauses = PauseBook(store, event_ms, wall_ms)
        self.startup = StartupState(self.pauses.waits, wall_ms)
        self.deadman: DeadMan | None = None
        self.clients: dict[str, Any] = {}
        self._heartbeat = Background("ate-heartbeat", self._beat, http=True, timeout_s=self.cfg.heartbeat_timeout_s)
        self._modules: dict[str, str] = {}

    async def start_alerts(self) -> None:
        """The alert feed and the heartbeat, from the first moment: a start-up waiting out a venue ban pings
        DEGRADED with the reason instead of going silent."""
        await asyncio.to_thread(self.feed.prime)
        self.notifier.start()
        self.feed.start()
        if self.cfg.heartbeat_url:
            self._heartbeat.start()

    async def _beat(self) -> None:
        await Heartbeat(self._heartbeat.session, self.health, url=self.cfg.heartbeat_url,
                        interval_s=self.cfg.heartbeat_interval_s).run()

    def attach_venues(self, clients: dict[str, Any]) -> None:
        self.clients = clients
        self.pauses.attach_clients(clients.values())

    def start_deadman(self, venues: list[str]) -> None:
        self.deadman = DeadMan(self.store, self.notifier, venues, loop_stall_s=self.cfg.loop_stall_s,
                               market_data_stale_s=self.cfg.market_data_stale_s, event_ms=self.event_ms,
                               paused=self.pauses.in_force)
        self.deadman.start()

    def market_data(self, venue: str) -> None:
        if self.deadman is not None:
            self.deadman.market_data(venue)

    def modules(self, statuses: Mapping[str, str]) -> None:
        """Record each signal module's status when it changes (all of them at the first call): what
        `ate status` and the promotion gates read from the store."""
        for module, status in statuses.items():
            if self._modules.get(module) != status:
                self._modules[module] = status
                self.store.add_event(EngineEvent(self.event_ms(), MODULE_STATUS, f"{module} {status}",
                                                 Severity.INFO, {"module": module, "status": status}))

    def health(self) -> Health:
        if self.deadman is not None:
            return self.deadman.health()
        return halted(self.store) or Health("DEGRADED", [f"engine starting: {self.startup.detail()}"])

    def figures(self) -> dict:
        """Venue limits and throttling, alerts and counted events, clock skew: for the metrics snapshot."""
        venues: dict[str, dict] = {}
        skew: dict[str, float] = {}
        for name, client in self.clients.items():
            rest = getattr(client, "rest", None)
            lim = getattr(client, "limiter", None)
            if rest is None or lim is None:
                continue
            venues[lim.venue] = {
                "windows": {w: {"used": u, "limit": n} for w, (u, n) in lim.usage().items()},
                "http_429": rest.status_counts.get(429, 0), "http_418": rest.status_counts.get(418, 0),
                "throttled_s": lim.throttled_ms / 1000}
            server = getattr(client, "server_clock", None)
            if server is not None and server.offset_ms is not None:
                skew[name] = float(server.offset_ms)
        return {"venues": venues,
                "alerts": {"sent": dict(self.notifier.sent_by_kind), "failed": dict(self.notifier.failed_by_kind)},
                "events": {k: self.feed.seen_by_kind.get(k, 0) for k in COUNTED_EVENTS},
                "clock_skew_ms": skew}

    async def stop_watching(self) -> None:
        """Heartbeat and dead-man off: first thing in a graceful stop, whose closing streams and slow steps are
        no outage."""
        await self._heartbeat.stop()
        if self.deadman is not None:
            await self.deadman.stop()
            self.deadman = None

    async def stop(self) -> None:
        await self.stop_watching()
        await self.feed.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.notifier.drain(), DRAIN_S)
        await self.notifier.stop()
