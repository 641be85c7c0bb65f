"""State of one book kept apart from another in a shared store: a shadow run's daily-loss anchor, emergency
ladder and strategy phases are hypothetical and must never become a canary's or live run's (a store is
shared across modes and runs; the trading state and the operator's kill are not scoped)."""

from __future__ import annotations

from typing import Any

from ate.model import EngineEvent
from ate.risk.store import StateStore


class ScopedState:
    def __init__(self, inner: StateStore, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix

    def get_state(self, key: str, default: Any = None) -> Any:
        return self.inner.get_state(self.prefix + key, default)

    def set_state(self, key: str, value: Any, ts_ms: int | None = None) -> None:
        self.inner.set_state(self.prefix + key, value, ts_ms)

    def add_event(self, ev: EngineEvent) -> None:
        self.inner.add_event(ev)
