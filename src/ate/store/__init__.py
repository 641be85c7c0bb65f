"""Persistence: SQLite by default, PostgreSQL by URL."""

from ate.store.db import Store, StoreBusy

__all__ = ["Store", "StoreBusy"]
