"""The one alert path: the store's events table is the record, this feed tails it into the notifier.

Whatever writes an event — the risk layer, the ledger, reconciliation, the venue watch, or another process
such as `ate kill` while the engine runs — reaches the operator the same way. The cursor (the last event
id handed over) is persisted, so a restart neither repeats alerts nor loses the events written while the
engine was down. Polling runs on the wall clock, never on a replay clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from sqlalchemy import func, select

from ate.model import EngineEvent, Severity
from ate.monitor.alerts import Notifier
from ate.monitor.background import Background
from ate.store import Store
from ate.store import schema as t

log = logging.getLogger(__name__)

CURSOR_KEY = "monitor.alert_cursor"
BATCH = 500


class AlertFeed:
    def __init__(self, store: Store, notifier: Notifier, *, poll_s: float = 0.5) -> None:
        self.store = store
        self.notifier = notifier
        self.poll_s = poll_s
        self.cursor: int | None = None
        self._persisted: int | None = None
        self.seen_by_kind: Counter[str] = Counter()  # every event read, alerting or not (metrics)
        self._poller = Background("ate-alert-feed", self.run)

    def prime(self) -> None:
        """Start from the persisted cursor; on a store that never had one, from its newest event (history
        written before alerts were configured is not replayed to the phone)."""
        stored = self.store.get_state(CURSOR_KEY)
        if isinstance(stored, int):
            self.cursor = self._persisted = stored
            return
        with self.store.engine.connect() as c:
            self.cursor = c.execute(select(func.max(t.events.c.id))).scalar() or 0
        self.store.set_state(CURSOR_KEY, self.cursor)
        self._persisted = self.cursor

    def _read(self) -> list[tuple[int, EngineEvent]]:
        q = select(t.events).where(t.events.c.id > self.cursor).order_by(t.events.c.id).limit(BATCH)
        with self.store.engine.connect() as c:
            return [(r.id, EngineEvent(r.ts_ms, r.kind, r.message, Severity(r.severity), dict(r.data or {})))
                    for r in c.execute(q)]

    def _dispatch(self, rows: list[tuple[int, EngineEvent]]) -> None:
        for _, ev in rows:
            self.seen_by_kind[ev.kind] += 1
            self.notifier.event(ev)
        if rows:
            self.cursor = rows[-1][0]

    def _persist(self) -> None:
        if self.cursor is not None and self.cursor != self._persisted:
            self.store.set_state(CURSOR_KEY, self.cursor)
            self._persisted = self.cursor

    def poll_once(self) -> int:
        """Hand every new event to the notifier and persist the cursor; returns how many were read."""
        if self.cursor is None:
            self.prime()
        rows = self._read()
        self._dispatch(rows)
        self._persist()
        return len(rows)

    async def run(self) -> None:
        if self.cursor is None:
            await asyncio.to_thread(self.prime)
        while True:
            try:
                rows = await asyncio.to_thread(self._read)
                self._dispatch(rows)
                # The cursor moves on once the notifier has attempted what it was given: a kill -9 in
                # between re-reads those events after the restart (an alert twice, never none).
                if self.notifier.idle:
                    await asyncio.to_thread(self._persist)
                if len(rows) == BATCH:
                    continue
            except Exception:  # a store hiccup must not end the alert path; the next poll retries
                log.exception("alert feed poll failed")
            await asyncio.sleep(self.poll_s)

    def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        """Hand over what was written up to now, then stop."""
        await self._poller.stop()
        try:
            self.poll_once()
        except Exception:
            log.exception("alert feed final poll failed")
