"""Persistence: SQLite by default, PostgreSQL by URL."""

from ate.store.db import Store

__all__ = ["Store"]
