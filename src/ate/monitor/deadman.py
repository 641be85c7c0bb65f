"""A dead-man that means dead: the engine loop's own liveness and each venue's market-data freshness,
measured on the wall clock (a replay clock running 60× would make every second look like a minute).

REST recency is no health signal: a healthy engine on WebSocket streams makes no REST request for hours.

- The loop ticks a monotonic timestamp. A watchdog thread alerts directly (the loop cannot) when the
  ticks stop for `loop_stall_s`; when the loop runs again it records how long it was gone (an event,
  so a SIGSTOPped process reports its own absence when continued).
- Every market-data message marks its venue; a venue silent for `market_data_stale_s` is an outage
  (event `stream_outage`), its first message after one ends it (`stream_restored`).
- `health()` gives the state the heartbeat carries: OK, DEGRADED with reasons, or HALTED.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ate.model import EngineEvent, Severity, TradingState
from ate.monitor.alerts import Alert, Notifier, post_blocking
from ate.risk.state import read_state
from ate.store import Store

log = logging.getLogger(__name__)

STALLED, OUTAGE, RESTORED = "engine_stalled", "stream_outage", "stream_restored"


@dataclass(frozen=True, slots=True)
class Health:
    state: str  # OK | DEGRADED | HALTED
    reasons: list[str] = field(default_factory=list)

    def line(self) -> str:
        return self.state + (": " + "; ".join(self.reasons) if self.reasons else "")


def halted(store: Store) -> Health | None:
    """HALTED with who and why, when the persisted trading state says so."""
    rec = read_state(store)
    if rec["state"] != TradingState.HALTED.value:
        return None
    return Health("HALTED", [f"{rec.get('who', '')}: {rec.get('why', '')}".strip(": ")])


class DeadMan:
    def __init__(self, store: Store, notifier: Notifier | None, venues: list[str], *, loop_stall_s: float = 10.0,
                 market_data_stale_s: float = 60.0, event_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
                 monotonic: Callable[[], float] = time.monotonic,
                 paused: Callable[[], dict[str, str]] = dict) -> None:
        self.store = store
        self.notifier = notifier
        self.loop_stall_s = loop_stall_s
        self.stale_s = market_data_stale_s
        self.event_ms = event_ms  # stamps of the events written (the store's clock); never measures
        self.monotonic = monotonic
        self.paused = paused  # venue -> reason, for the venues waiting out a ban or pause
        self.tick_s = min(1.0, loop_stall_s / 4)
        now = monotonic()
        self.started = now
        self.last_tick = now
        self._last_data: dict[str, float] = dict.fromkeys(venues, now)
        self._outage: set[str] = set()
        self._stall_reported = False  # the watchdog already alerted for the current stall
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task | None = None

    # -- inputs ---------------------------------------------------------------------------------------

    def market_data(self, venue: str) -> None:
        """One accepted market-data message from `venue` (cheap: called per message)."""
        self._last_data[venue] = self.monotonic()

    # -- the loop side --------------------------------------------------------------------------------

    def tick(self) -> None:
        """One loop heartbeat: notice a stall that just ended, and market-data outages."""
        now = self.monotonic()
        gap = now - self.last_tick
        self.last_tick = now
        if gap > self.loop_stall_s:
            self._stall_reported = False
            self._event(STALLED, f"engine loop was unresponsive for {gap:.1f} s (limit {self.loop_stall_s:g} s); "
                                 "it is running again", Severity.CRITICAL, {"seconds": round(gap, 1)})
        for venue, last in self._last_data.items():
            age = now - last
            if age > self.stale_s and venue not in self._outage:
                self._outage.add(venue)
                self._event(OUTAGE, f"no market data from {venue} for {age:.0f} s", Severity.CRITICAL,
                            {"venue": venue, "seconds": round(age)})
            elif age <= self.stale_s and venue in self._outage:
                self._outage.discard(venue)
                self._event(RESTORED, f"market data from {venue} flowing again", Severity.INFO, {"venue": venue})

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)  # wall time: never the engine's (possibly replayed) clock
            try:
                self.tick()
            except Exception:
                log.exception("dead-man tick failed")

    # -- the watchdog thread --------------------------------------------------------------------------

    def watch_once(self) -> bool:
        """The watchdog's check; True when it alerted for a stall now in progress."""
        silent = self.monotonic() - self.last_tick
        if silent <= self.loop_stall_s + self.tick_s or self._stall_reported:
            return False
        self._stall_reported = True
        alert = Alert(STALLED, f"engine loop unresponsive for {silent:.0f} s (limit {self.loop_stall_s:g} s)",
                      Severity.CRITICAL, key="watchdog", ts_ms=self.event_ms())
        log.critical("engine loop unresponsive", extra={"seconds": round(silent, 1)})
        for sink in self.notifier.sinks if self.notifier is not None else ():
            try:
                post_blocking(sink, alert, self.notifier.timeout_s)
                self.notifier.sent_by_kind[STALLED] += 1
            except Exception as exc:  # noqa: BLE001 - a dead receiver must not end the watchdog
                self.notifier.failed_by_kind[STALLED] += 1
                log.warning("watchdog alert failed", extra={"sink": type(sink).__name__, "error": type(exc).__name__})
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.watch_once()
            except Exception:
                log.exception("watchdog check failed")

    # -- state ----------------------------------------------------------------------------------------

    def health(self) -> Health:
        stop = halted(self.store)
        if stop is not None:
            return stop
        rec = read_state(self.store)
        reasons = []
        silent = self.monotonic() - self.last_tick
        if silent > self.loop_stall_s:
            reasons.append(f"engine loop unresponsive for {silent:.0f} s")
        now = self.monotonic()
        for venue, last in sorted(self._last_data.items()):
            if now - last > self.stale_s:
                reasons.append(f"no market data from {venue} for {now - last:.0f} s")
        reasons += [f"{venue} paused: {why}" for venue, why in sorted(self.paused().items())]
        if rec["state"] == TradingState.REDUCING.value:
            reasons.append(f"trading state REDUCING: {rec.get('why', '')}")
        return Health("DEGRADED" if reasons else "OK", reasons)

    def start(self) -> None:
        self.last_tick = self.monotonic()
        self._task = asyncio.create_task(self.run(), name="ate-deadman")
        self._thread = threading.Thread(target=self._watch, name="ate-watchdog", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)

    def _event(self, kind: str, message: str, severity: Severity, data: dict) -> None:
        log.warning(kind, extra=data | {"event_message": message})
        self.store.add_event(EngineEvent(self.event_ms(), kind, message, severity, data))
