"""What the operator sees and may do while the engine starts.

The operator API and the heartbeat come up before any venue request, so a start-up that waits out a
persisted ban (429 Retry-After, 418 until) or reconciles for minutes is visible instead of silent: the
phase, and the ban being waited out with its end, are in `/api/status`, the dashboard and the heartbeat.

Controls before the engine has loaded and reconciled its ledger act on flags only, never on half-loaded
state:
- kill works at once: kill file first, then HALTED persisted (what `ate kill` does with no engine). The
  trading state the engine loads, or its kill switch's first poll, adopts it before any market data is
  processed, and the kill switch cancels whatever the reconciled ledger shows open.
- resume works the same way (`ate resume`): kill file removed, then ACTIVE persisted.
- close-all is refused (409, with the reason): which positions to close is only known once reconciliation
  has finished; queueing it would fire minutes later on a decision taken blind. Kill halts now; close-all
  is accepted as soon as the engine runs.
Once the engine runs, every control goes to its risk controls (`running`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ate.model import TradingState
from ate.monitor.pauses import utc
from ate.monitor.recorder import wall_ms
from ate.monitor.view import ControlRefused, Controls
from ate.risk.killswitch import write_kill_file
from ate.risk.state import TradingStateKeeper, read_state, write_state
from ate.store import Store

STARTING = "starting"
CONNECTING = "connecting"  # clock sync and instruments: the first venue requests (where a ban is waited out)
LOADING = "loading ledger"
RECONCILING = "reconciling"
WARMING_UP = "warming up"
RUNNING = "running"
STOPPING = "stopping"


class StartupState:
    """The engine's start-up phase and the venue bans it is waiting out.

    `waits()` gives venue -> (until ms on the pause clock, reason, seconds left) for every pause in force.
    """

    def __init__(self, waits: Callable[[], dict[str, tuple[int, str, float]]],
                 clock: Callable[[], int] = wall_ms) -> None:
        self.waits = waits
        self.clock = clock
        self.phase = STARTING
        self.since_ms = clock()

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.since_ms = self.clock()

    @property
    def running(self) -> bool:
        return self.phase == RUNNING

    def detail(self) -> str:
        """One line: "waiting for binance_spot ban until 2026-03-17 00:03:00 UTC (HTTP 429, 52 s left)" while
        start-up waits out a ban, else the phase."""
        waits = self.waits() if self.phase not in (RUNNING, STOPPING) else {}
        if not waits:
            return self.phase
        return "; ".join(f"waiting for {venue} ban until {utc(until)} ({reason}, {left:.0f} s left)"
                         for venue, (until, reason, left) in sorted(waits.items()))

    def to_dict(self) -> dict:
        waits = self.waits() if self.phase not in (RUNNING, STOPPING) else {}
        return {"phase": self.phase, "since_ms": self.since_ms, "detail": self.detail(),
                "waiting_for": [{"venue": v, "until_ms": until, "reason": reason, "left_s": round(left, 1)}
                                for v, (until, reason, left) in sorted(waits.items())]}


class StartupControls:
    """`Controls` from the first moment of start-up: flags only until `running` is handed over."""

    def __init__(self, store: Store, state: StartupState, *, kill_file: Path,
                 keeper: Callable[[], TradingStateKeeper | None] = lambda: None,
                 clock: Callable[[], int] = wall_ms) -> None:
        self.store = store
        self.state = state
        self.kill_file = kill_file
        self.keeper = keeper  # the loaded trading state, once there is one (it must follow a kill at once)
        self.clock = clock
        self.running: Controls | None = None

    async def trading_state(self) -> dict:
        if self.running is not None:
            return await self.running.trading_state()
        return read_state(self.store)

    async def kill(self, reason: str, who: str) -> None:
        if self.running is not None:
            return await self.running.kill(reason, who)
        # The file first, like `ate kill`: the halt holds even if this process dies before the store write.
        write_kill_file(self.kill_file, reason, who, self.clock())
        self._set(TradingState.HALTED, who, reason)

    async def resume(self, who: str) -> None:
        if self.running is not None:
            return await self.running.resume(who)
        self.kill_file.unlink(missing_ok=True)  # first: the file alone would halt again
        self._set(TradingState.ACTIVE, who, "resume")

    async def close_all(self, who: str) -> None:
        if self.running is None:
            raise ControlRefused(f"close-all refused: the engine is starting ({self.state.detail()}); positions "
                                 "are known once reconciliation has finished. Kill halts trading now; close-all "
                                 "is accepted once the engine runs")
        await self.running.close_all(who)

    async def readiness(self) -> tuple[bool, list[str]]:
        if self.running is not None:
            return await self.running.readiness()
        return False, [f"engine starting: {self.state.detail()}"]

    def _set(self, state: TradingState, who: str, why: str) -> None:
        keeper = self.keeper()
        if keeper is not None:  # the risk layer follows at once, not at the kill switch's next poll
            keeper.set(state, who, why)
        elif TradingState(read_state(self.store)["state"]) is not state:
            write_state(self.store, state, who, why, self.clock())
