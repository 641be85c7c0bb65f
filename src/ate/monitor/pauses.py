"""Venue pauses and bans (429 Retry-After, 418 until) that survive a restart.

Every new or longer pause a venue's rate limiter takes is persisted (wall-clock end, reason) and written
as an event, so it alerts. On start the persisted pauses are handed back to the limiters before any
request: a restart inside a 429 period sends nothing until it ends (sending would earn a 418 ban), and
the wait is announced (event, `ate status`, the dead-man's DEGRADED reason) instead of being silent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from ate.model import EngineEvent, Severity
from ate.monitor.recorder import wall_ms
from ate.risk.events import API_VIOLATION
from ate.store import Store
from ate.venues.ratelimit import RateLimiter

STATE_KEY = "venues.pauses"
PAUSED = "venue_paused"


def utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def stored_pauses(store: Store, now_ms: int | None = None) -> dict[str, dict]:
    """The persisted pauses still in force at `now_ms` (wall clock): venue -> {until_ms, reason}."""
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    rec = store.get_state(STATE_KEY) or {}
    return {v: p for v, p in rec.items() if isinstance(p, dict) and p.get("until_ms", 0) > now}


class PauseBook:
    """`wall_ms`: the clock pauses are persisted on (the limiters' pause clock); `who` waits them out."""

    def __init__(self, store: Store, event_ms: Callable[[], int],
                 wall_ms: Callable[[], int] = wall_ms, who: str = "start-up") -> None:
        self.store = store
        self.event_ms = event_ms
        self.wall_ms = wall_ms
        self.who = who
        self.limiters: dict[str, RateLimiter] = {}

    def attach(self, limiters: Iterable[RateLimiter]) -> None:
        """Restore persisted pauses into `limiters` and persist every pause they take from now on."""
        persisted = stored_pauses(self.store, self.wall_ms())
        for lim in limiters:
            self.limiters[lim.venue] = lim
            p = persisted.get(lim.venue)
            if p is not None:
                lim.restore(int(p["until_ms"]), str(p.get("reason", "")))
                left = lim.pause_left_s()
                self._event(PAUSED, f"{self.who} waits out {lim.venue}'s {p.get('reason', 'pause')}: {left:.0f} s "
                                    f"left (until {utc(lim.paused_until_ms)}); no request is sent before",
                            Severity.WARNING, lim.venue, lim.paused_until_ms, str(p.get("reason", "")))
            lim.on_pause = self.record

    def attach_clients(self, clients: Iterable[Any]) -> None:
        """`attach` the rate limiters of venue clients (a client may keep a second one for its history)."""
        limiters: list[RateLimiter] = []
        for client in clients:
            for lim in (getattr(client, "limiter", None), getattr(client, "history_limiter", None)):
                if lim is not None and lim not in limiters:
                    limiters.append(lim)
        self.attach(limiters)

    def record(self, venue: str, until_ms: int, reason: str) -> None:
        rec = dict(self.store.get_state(STATE_KEY) or {})
        rec[venue] = {"until_ms": until_ms, "reason": reason}
        self.store.set_state(STATE_KEY, rec)
        lim = self.limiters.get(venue)
        left = lim.pause_left_s() if lim is not None else (until_ms - self.wall_ms()) / 1000
        if "418" in reason:  # a ban: the promotion gates count these
            self._event(API_VIOLATION, f"{venue} banned this IP ({reason}) for {left:.0f} s, until {utc(until_ms)}",
                        Severity.CRITICAL, venue, until_ms, reason)
        else:
            self._event(PAUSED, f"{venue} paused {left:.0f} s after {reason}, until {utc(until_ms)}",
                        Severity.WARNING, venue, until_ms, reason)

    def in_force(self) -> dict[str, str]:
        """venue -> why, for every limiter paused now."""
        return {v: f"{reason}, {left:.0f} s left" for v, (_, reason, left) in self.waits().items()}

    def waits(self) -> dict[str, tuple[int, str, float]]:
        """venue -> (until ms, reason, seconds left), for every limiter paused now."""
        return {v: (lim.paused_until_ms, lim.pause_reason, lim.pause_left_s()) for v, lim in self.limiters.items()
                if lim.paused}

    def _event(self, kind: str, message: str, severity: Severity, venue: str, until_ms: int, reason: str) -> None:
        code = 418 if "418" in reason else 429 if "429" in reason else None
        self.store.add_event(EngineEvent(self.event_ms(), kind, message, severity,
                                         {"venue": venue, "until_ms": until_ms, "reason": reason, "code": code,
                                          "key": f"{venue}:{until_ms}"}))
