"""The kill switch: a file, the CLI, the operator API and SIGUSR1 all lead to the same activation.

Activation → HALTED (persisted), cancel every open order on every venue, optionally flatten
(``kill_switch.flatten``). Only an explicit resume (``ate resume`` or the authenticated operator API)
leaves HALTED: removing the file alone is not enough. ``ate kill`` works with no engine running by
writing the file and persisting HALTED; a running engine sees either within one poll.

The engine wires it::

    ks = KillSwitch(cfg.kill_switch, keeper, cancel_all=order_manager.cancel_all,
                    flatten=order_manager.flatten_all)
    ks.install_signal_handler(asyncio.get_running_loop())
    asyncio.create_task(ks.run())
    # operator API (monitor): await ks.activate(reason, who) / await ks.resume(who)
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from ate.config.risk import KillSwitchConfig
from ate.model import EngineEvent, Severity, TradingState
from ate.risk.events import KILL_SWITCH
from ate.risk.state import TradingStateKeeper, read_state

log = structlog.get_logger("ate.risk")

Action = Callable[[], Awaitable[int]]  # returns how many orders/positions it handled


def kill_file(cfg: KillSwitchConfig, workdir: Path | None = None) -> Path:
    path = Path(cfg.file)
    return path if path.is_absolute() else (workdir or Path.cwd()) / path


def write_kill_file(path: Path, reason: str, who: str, now_ms: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{who} {now_ms}: {reason}\n")


class KillSwitch:
    def __init__(self, cfg: KillSwitchConfig, keeper: TradingStateKeeper, cancel_all: Action,
                 flatten: Action | None = None, *, workdir: Path | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.cfg = cfg
        self.keeper = keeper
        self.path = kill_file(cfg, workdir)
        self._cancel_all = cancel_all
        self._flatten = flatten
        self._sleep = sleep
        self._lock = asyncio.Lock()
        # (who, why) of a HALT whose cancel has not completed. Starting HALTED (a restart after a kill) cancels
        # again at the first poll: orders may have been left open if the process died mid-way.
        self._cleanup_due: tuple[str, str] | None = None
        if self.halted:
            rec = read_state(keeper.store)
            self._cleanup_due = (rec["who"], rec["why"])
        self._stopped = False
        self.activations = 0

    @property
    def halted(self) -> bool:
        return self.keeper.state is TradingState.HALTED

    async def activate(self, reason: str, who: str) -> None:
        """HALT, cancel all open orders, flatten if configured. Safe to call again while HALTED."""
        async with self._lock:
            self.keeper.set(TradingState.HALTED, who, reason)
            self.activations += 1
            log.critical("kill_switch_activated", who=who, reason=reason)
            self._cleanup_due = (who, reason)
            await self._cleanup()

    async def resume(self, who: str) -> None:
        """Leave HALTED: remove the file and persist ACTIVE."""
        async with self._lock:
            self.path.unlink(missing_ok=True)
            self._cleanup_due = None
            self.keeper.set(TradingState.ACTIVE, who, "resume")
            self._event("resume", who, "resume", Severity.WARNING)

    async def poll_once(self) -> None:
        """One look at the store and the file; the watcher loop calls this every ``poll_ms``."""
        changed = self.keeper.refresh()
        if changed is TradingState.HALTED:  # another process (ate kill) halted us: do the cleanup here
            rec = read_state(self.keeper.store)
            self._cleanup_due = (rec["who"], rec["why"])
        elif changed is not None:  # resumed elsewhere (ate resume): nothing left to clean up
            self._cleanup_due = None
        if self.path.exists() and not self.halted:
            await self.activate(self._file_reason(), "file")
        elif self._cleanup_due and self.halted and not self._lock.locked():
            async with self._lock:
                await self._cleanup()

    async def run(self) -> None:
        while not self._stopped:
            try:
                await self.poll_once()
            except Exception:  # the watcher must outlive any one failure; retried next poll
                log.exception("kill_switch_poll_failed")
            await self._sleep(self.cfg.poll_ms / 1000)

    def stop(self) -> None:
        self._stopped = True

    def install_signal_handler(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGUSR1, lambda: loop.create_task(self.activate("SIGUSR1", "signal")))

    async def _cleanup(self) -> None:
        if self._cleanup_due is None:
            return
        who, reason = self._cleanup_due
        try:
            canceled = await self._cancel_all()
            flattened = await self._flatten() if self.cfg.flatten and self._flatten is not None else 0
        except Exception:
            log.exception("kill_switch_cleanup_failed")  # retried at the next poll
            return
        self._cleanup_due = None
        self._event("activate", who, reason, Severity.CRITICAL, canceled=canceled, flattened=flattened)

    def _file_reason(self) -> str:
        try:
            return self.path.read_text()[:200].strip() or "EMERGENCY_STOP file"
        except OSError:
            return "EMERGENCY_STOP file"

    def _event(self, action: str, who: str, reason: str, severity: Severity, **data: int) -> None:
        self.keeper.store.add_event(EngineEvent(self.keeper.clock(), KILL_SWITCH, f"kill switch {action} by {who}: "
                                                f"{reason}", severity,
                                                {"action": action, "who": who, "reason": reason, **data}))
