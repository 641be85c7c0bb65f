"""An in-memory StateStore for runs that persist nothing between processes (backtests)."""

from __future__ import annotations

from typing import Any

from ate.model import EngineEvent


class MemoryState:
    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.event_log: list[EngineEvent] = []

    def get_state(self, key: str, default: Any = None) -> Any:
        return self.state.get(key, default)

    def set_state(self, key: str, value: Any, ts_ms: int | None = None) -> None:
        self.state[key] = value

    def add_event(self, ev: EngineEvent) -> None:
        self.event_log.append(ev)
