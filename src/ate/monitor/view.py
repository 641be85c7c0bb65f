"""The boundary between the engine and the monitor: what the operator API may read and ask for.

`EngineView` is what the HTTP API, dashboard, Prometheus collector and heartbeat consume. `StoreView`
implements it from the store (plus, when the engine runs, its `MetricsRecorder` and risk controls):
`ate dashboard` uses it alone, read-only; the engine can hand the same class its recorder and controls.
Methods are coroutines so store reads run in a worker thread, off the engine's event loop.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict, is_dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol

from ate.model import EngineEvent
from ate.monitor.figures import DAY_MS, daily_pnl_series, daily_pnl_usd, sharpe_ratio_rolling
from ate.monitor.recorder import MODULES, Clock, MetricsRecorder, wall_ms
from ate.monitor.status import unresolved_orders
from ate.risk.events import MODULE_STATUS
from ate.risk.state import read_state
from ate.store import Store

CARRY_STRATEGY = "funding_carry"
CHART_POINTS = 600
_SECRET_KEY = re.compile(r"secret|token|password|passphrase|signature|api_?key|private", re.IGNORECASE)


class ControlRefused(Exception):
    """A control call the view cannot perform (e.g. no engine running); the API answers 409."""


class EngineView(Protocol):
    async def metrics_snapshot(self) -> dict:
        """{"system_health": ..., "strategy_performance": ..., "current_positions": [...]} (JSON-ready)."""

    async def orders(self, *, open_only: bool = False, limit: int = 100) -> list[dict]: ...

    async def trades(self, *, limit: int = 100) -> list[dict]: ...

    async def events(self, *, limit: int = 100, kind: str | None = None) -> list[dict]: ...

    async def signals(self) -> dict[str, dict]: ...

    async def equity(self, *, days: int = 30) -> dict:
        """{"equity": [[ts_ms, equity], ...], "daily_pnl": [[day_ms, pnl], ...]} for the charts."""

    async def readiness(self) -> tuple[bool, list[str]]: ...

    async def record_event(self, event: EngineEvent) -> None:
        """Persist an operator-facing event (the API's `audit` trail)."""

    async def kill(self, reason: str, who: str) -> None: ...

    async def resume(self, who: str) -> None: ...

    async def close_all(self, who: str) -> None: ...


class Controls(Protocol):
    """What the running engine offers the operator; the engine adapts its risk layer to this."""

    async def trading_state(self) -> dict:
        """The risk layer's persisted record {"state": "ACTIVE"|"REDUCING"|"HALTED", "who", "why", "ts_ms"}."""

    async def kill(self, reason: str, who: str) -> None: ...

    async def resume(self, who: str) -> None: ...

    async def close_all(self, who: str) -> None: ...

    async def readiness(self) -> tuple[bool, list[str]]: ...


def redact(obj: Any) -> Any:
    """JSON-ready copy: Decimal as exact strings, enums as values, secret-looking keys masked."""
    if isinstance(obj, dict):
        return {str(k): "***" if _SECRET_KEY.search(str(k)) else redact(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact(v) for v in obj]
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, Enum):
        return obj.value
    if is_dataclass(obj) and not isinstance(obj, type):
        return redact(asdict(obj))
    if isinstance(obj, float) and obj != obj:  # NaN is not JSON
        return None
    return obj


def latest_module_outputs(events: list[EngineEvent]) -> dict[str, dict]:
    """Latest status per module from `module_status` events (newest first), as the engine records them."""
    out: dict[str, dict] = {}
    for ev in events:
        module = ev.data.get("module")
        if module in MODULES and module not in out:
            out[module] = {"status": ev.data.get("status", "UNKNOWN"), "output": ev.data}
    return out


class StoreView:
    """EngineView over the store; with `recorder` and `controls` it is the running engine's view."""

    def __init__(self, store: Store, *, recorder: MetricsRecorder | None = None, controls: Controls | None = None,
                 shadow: bool = False, clock: Clock = wall_ms, equity_ttl_s: float = 10.0) -> None:
        self.store = store
        self.recorder = recorder
        self.controls = controls
        self.shadow = shadow
        self.clock = clock
        # Sharpe, daily P&L and the charts read up to a month of snapshots; re-reading them for every
        # scrape and dashboard frame would cost the engine's process far more than the freshness is worth.
        self.equity_ttl_ms = equity_ttl_s * 1000
        self._equity: tuple[int, list] | None = None

    async def _io(self, fn, *args, **kwargs):
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _equity_series(self, now_ms: int) -> list:
        if self._equity is None or not 0 <= now_ms - self._equity[0] < self.equity_ttl_ms:
            series = await self._io(self.store.equity_series, since_ms=now_ms - 32 * DAY_MS, shadow=self.shadow)
            self._equity = (now_ms, series)
        return self._equity[1]

    def _store_figures(self, now_ms: int, series: list) -> dict:
        funding = self.store.ledger(kind="funding", shadow=self.shadow)
        positions = self.store.positions(shadow=self.shadow)
        state = None if self.controls else read_state(self.store)
        modules = None if self.recorder else latest_module_outputs(
            self.store.events(kind=MODULE_STATUS, limit=len(MODULES) * 8))
        return {
            "funding_captured_usd": float(sum((Decimal(str(r["amount"])) for r in funding
                                               if r["strategy"] == CARRY_STRATEGY), Decimal(0))),
            "sharpe_ratio_rolling": sharpe_ratio_rolling(series, now_ms),
            "daily_pnl_usd": daily_pnl_usd(series, now_ms),
            "positions": [redact(p) | {"unrealized_pnl": str(p.unrealized_pnl), "notional": str(p.notional)}
                          for p in positions],
            "state": state,
            "modules": modules,
            "unresolved_orders": unresolved_orders(self.store, shadow=self.shadow),
        }

    async def metrics_snapshot(self) -> dict:
        now = self.clock()
        stored = await self._io(self._store_figures, now, await self._equity_series(now))
        rec = self.recorder
        if rec is not None:
            health = rec.system_health()
            strat = rec.strategy_figures()
        else:
            health = {"api_error_rate": {}, "api_requests": {}, "trade_latency_ms": {"p50": None, "p99": None},
                      "websocket": {}, "clock_skew_ms": {},
                      "module_status": dict.fromkeys(MODULES, "UNKNOWN") | {
                          m: o["status"] for m, o in stored["modules"].items()},
                      "uptime_s": None}
            strat = {"arbitrage": {"opportunities_detected": None, "trades_executed": None,
                                   "average_profit_bps": None, "slippage_bps": None},
                     "delta_neutral": {"current_delta": None, "target_delta": None, "hedge_effectiveness": None},
                     "win_rate_pct": None, "win_rate_by_strategy": {}}
        health["source"] = "engine" if rec is not None else "store"
        health["unresolved_orders"] = stored["unresolved_orders"]  # outcome unknown at the venue, headroom held
        health["trading_state"] = await self.controls.trading_state() if self.controls else stored["state"]
        strat["delta_neutral"]["funding_captured_usd"] = stored["funding_captured_usd"]
        performance = {
            "sharpe_ratio_rolling": stored["sharpe_ratio_rolling"],
            "daily_pnl_usd": stored["daily_pnl_usd"],
            "win_rate_pct": strat.pop("win_rate_pct"),
            "win_rate_by_strategy": strat.pop("win_rate_by_strategy"),
        }
        return redact({
            "ts_ms": now,
            "system_health": health,
            "strategy_performance": {**strat, "performance": performance},
            "current_positions": stored["positions"],
        })

    async def orders(self, *, open_only: bool = False, limit: int = 100) -> list[dict]:
        rows = await self._io(self.store.orders, open_only=open_only, shadow=self.shadow, limit=limit)
        return redact(rows)

    async def trades(self, *, limit: int = 100) -> list[dict]:
        def newest() -> list:
            # fills() is oldest-first; the API shows the newest `limit`.
            rows = self.store.fills(shadow=self.shadow, since_ms=self.clock() - 30 * DAY_MS)
            return rows[-limit:][::-1]
        return redact(await self._io(newest))

    async def events(self, *, limit: int = 100, kind: str | None = None) -> list[dict]:
        return redact(await self._io(self.store.events, limit=limit, kind=kind))

    async def signals(self) -> dict[str, dict]:
        if self.recorder is not None:
            return redact(self.recorder.module_outputs())
        events = await self._io(self.store.events, limit=len(MODULES) * 8, kind=MODULE_STATUS)
        return redact(latest_module_outputs(events))

    async def equity(self, *, days: int = 30) -> dict:
        now = self.clock()
        days = min(days, 31)  # the cached series spans 32 days
        since = now - (days + 1) * DAY_MS
        series = [p for p in await self._equity_series(now) if p[0] >= since]
        step = max(1, -(-len(series) // CHART_POINTS))  # a chart needs no more points than pixels
        shown = series[::step] + ([series[-1]] if series and (len(series) - 1) % step else [])
        return {"equity": [[ts, float(e)] for ts, e, _ in shown],
                "daily_pnl": [[d, p] for d, p in daily_pnl_series(series, now, days)]}

    async def readiness(self) -> tuple[bool, list[str]]:
        if self.controls is None:
            return False, ["engine not running: read-only view of the store"]
        return await self.controls.readiness()

    async def record_event(self, event: EngineEvent) -> None:
        await self._io(self.store.add_event, event)

    def _controls(self) -> Controls:
        if self.controls is None:
            raise ControlRefused("engine not running: this view of the store is read-only")
        return self.controls

    async def kill(self, reason: str, who: str) -> None:
        await self._controls().kill(reason, who)

    async def resume(self, who: str) -> None:
        await self._controls().resume(who)

    async def close_all(self, who: str) -> None:
        await self._controls().close_all(who)
