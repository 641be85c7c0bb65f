"""The trading state ACTIVE / REDUCING / HALTED, persisted so that a restart keeps it.

Every transition is written to the store first (key ``risk.trading_state``), then logged as a
``trading_state`` event naming who asked and why. Another process (``ate kill`` / ``ate resume``)
may change the persisted state; :meth:`TradingStateKeeper.refresh` adopts it.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from ate.model import EngineEvent, Severity, TradingState
from ate.risk.events import STATE_KEY, TRADING_STATE
from ate.risk.store import StateStore

log = structlog.get_logger("ate.risk")


def read_state(store: StateStore) -> dict:
    """The persisted record {"state", "who", "why", "ts_ms"}; ACTIVE when nothing was ever stored."""
    rec = store.get_state(STATE_KEY)
    return rec if isinstance(rec, dict) and rec.get("state") in TradingState.__members__ else {
        "state": TradingState.ACTIVE.value, "who": "", "why": "", "ts_ms": 0}


def write_state(store: StateStore, state: TradingState, who: str, why: str, now_ms: int) -> TradingState:
    """Persist a transition and log it; returns the previous state. Used by the engine and the CLI alike."""
    before = TradingState(read_state(store)["state"])
    store.set_state(STATE_KEY, {"state": state.value, "who": who, "why": why, "ts_ms": now_ms}, now_ms)
    severity = Severity.CRITICAL if state is TradingState.HALTED else Severity.WARNING
    if state is TradingState.ACTIVE:
        severity = Severity.INFO
    store.add_event(EngineEvent(now_ms, TRADING_STATE, f"{before.value} -> {state.value} by {who}: {why}",
                                severity, {"from": before.value, "to": state.value, "who": who, "why": why}))
    log.warning("trading_state", before=before.value, after=state.value, who=who, why=why)
    return before


class TradingStateKeeper:
    """The engine's view of the trading state; listeners (e.g. ``PreTradeChecker.set_state``) follow it."""

    def __init__(self, store: StateStore, clock: Callable[[], int]) -> None:
        self.store = store
        self.clock = clock
        self.state = TradingState(read_state(store)["state"])
        self._listeners: list[Callable[[TradingState], None]] = []

    def subscribe(self, listener: Callable[[TradingState], None]) -> None:
        self._listeners.append(listener)
        listener(self.state)

    def set(self, state: TradingState, who: str, why: str) -> bool:
        """Move to ``state``; False if already there (nothing written)."""
        self.refresh()
        if state is self.state:
            return False
        write_state(self.store, state, who, why, self.clock())
        self._adopt(state)
        return True

    def refresh(self) -> TradingState | None:
        """Re-read the persisted state; returns the new state if another process changed it."""
        stored = TradingState(read_state(self.store)["state"])
        if stored is self.state:
            return None
        log.warning("trading_state_external", before=self.state.value, after=stored.value)
        self._adopt(stored)
        return stored

    def _adopt(self, state: TradingState) -> None:
        self.state = state
        for listener in self._listeners:
            listener(state)
