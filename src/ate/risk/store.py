"""The part of ``ate.store.Store`` the risk layer uses (risk sits above the store in the layering)."""

from __future__ import annotations

from typing import Any, Protocol

from ate.model import EngineEvent


class StateStore(Protocol):
    def get_state(self, key: str, default: Any = None) -> Any: ...

    def set_state(self, key: str, value: Any, ts_ms: int | None = None) -> None: ...

    def add_event(self, ev: EngineEvent) -> None: ...
