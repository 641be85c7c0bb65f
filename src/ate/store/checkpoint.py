"""WAL checkpoints of the engine's SQLite store, on a thread of their own.

SQLite checkpoints inline by default: the commit that grows the write-ahead log past 1000 pages copies them
into the database file and fsyncs it before it returns, so every few hundred units one order waits for a
checkpoint (the tail of tick→order). The engine's connections therefore do not checkpoint
(`wal_autocheckpoint=0`) and this thread does, PASSIVE (never waiting for the engine's writer), on its own
connection. Durability does not change: a commit is durable once its WAL frames are synced (synchronous=FULL),
and a checkpoint interrupted by a crash is redone from the WAL on the next open.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)


class Checkpointer:
    def __init__(self, path: str, every_s: float = 0.2) -> None:
        self.path = path
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ate-store-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the checkpoint in progress, if any."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, check_same_thread=False)
        try:
            db.execute("PRAGMA synchronous=FULL")
            while not self._stop.wait(self.every_s):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # a busy or failing disk: the WAL waits for the next round
                    log.warning("store checkpoint failed: %s", exc)
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # what the engine wrote last
        except sqlite3.Error as exc:
            log.warning("store checkpoint failed: %s", exc)
        finally:
            db.close()
