"""The boundary between the engine and the monitor: what the operator API may read and ask for.

`EngineView` is what the HTTP API, dashboard, Prometheus collector and heartbeat consume. `StoreView`
implements it from the store (plus, when the engine runs, its `MetricsRecorder` and risk controls):
`ate dashboard` uses it alone, read-only; the engine can hand the same class its recorder and controls.
Methods are coroutines so store reads run in a worker thread, off the engine's event loop.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Literal, Protocol

from ate.model import EngineEvent, Instrument, Mode
from ate.monitor.figures import (
    DAY_MS,
    daily_pnl_series,
    daily_pnl_split,
    daily_pnl_usd,
    daily_window,
    sharpe_ratio_rolling,
)
from ate.monitor.recorder import MODULES, Clock, MetricsRecorder, wall_ms
from ate.monitor.status import unresolved_orders
from ate.risk.events import MODULE_STATUS
from ate.risk.state import read_state
from ate.store import Store

CARRY_STRATEGY = "funding_carry"
CHART_POINTS = 600
USD_DECIMALS = 2  # P&L, notional and equity: quote stablecoins shown to the cent
# Without the venue's filters (read-only view), at most this many decimals are inferred from stored prices.
MAX_INFERRED_DECIMALS = 8
ClockKind = Literal["simulated", "wall"]
_SECRET_KEY = re.compile(r"secret|token|password|passphrase|signature|api_?key|private", re.IGNORECASE)


class ControlRefused(Exception):
    """A control call the view cannot perform (e.g. no engine running); the API answers 409."""


class EngineView(Protocol):
    clock: Clock  # every timestamp the view serves or records comes from this one clock

    async def metrics_snapshot(self) -> dict:
        """{"system_health": ..., "strategy_performance": ..., "current_positions": [...]} (JSON-ready)."""

    async def orders(self, *, open_only: bool = False, limit: int = 100) -> list[dict]: ...

    async def trades(self, *, limit: int = 100) -> list[dict]: ...

    async def events(self, *, limit: int = 100, kind: str | None = None) -> list[dict]: ...

    async def signals(self) -> dict[str, dict]: ...

    async def prices(self) -> dict:
        """{"venue:symbol": {"candles": [[open_ms, o, h, l, c], ...], "quote", "price_decimals"}} (price chart)."""

    async def equity(self, *, days: int = 30) -> dict:
        """{"equity": [[ts_ms, equity], ...], "daily_pnl": [[day_ms, pnl], ...]} for the charts."""

    async def readiness(self) -> tuple[bool, list[str]]: ...

    async def status(self) -> dict:
        """{"phase", "detail", "since_ms", "waiting_for": [...], "health", "ready", "reasons"}: start-up phase
        and the venue bans it waits out, the heartbeat's state line, readiness."""

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


def decimals(step: Decimal) -> int:
    """Decimal places of a tick or step size (0.01 → 2, 0.5 → 1, 10 → 0)."""
    return max(0, -int(step.normalize().as_tuple().exponent))


def _decimals_of(value: Any) -> int | None:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None
    return min(decimals(d), MAX_INFERRED_DECIMALS) if d.is_finite() and d else None


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
                 mode: Mode | None = None, shadow: bool = False, clock: Clock = wall_ms,
                 clock_kind: ClockKind = "wall", clock_note: str | None = None,
                 instruments: Mapping[str, Instrument] | None = None, equity_ttl_s: float = 10.0,
                 startup: Callable[[], dict] | None = None, health: Callable[[], str] | None = None) -> None:
        self.store = store
        self.recorder = recorder
        self.controls = controls
        self.mode = mode
        self.shadow = shadow or (mode is not None and mode.hypothetical)
        self.clock = clock
        self.clock_kind = clock_kind
        self.clock_note = clock_note
        self.startup = startup  # the running engine's start-up phase (monitor.startup.StartupState.to_dict)
        self.health = health  # the heartbeat's state line ("DEGRADED: engine starting: ...")
        self._precision: dict[str, tuple[int | None, int | None]] = {}
        self._precision_exact: frozenset[str] = frozenset()
        self._quotes: dict[str, str] = {}
        self.know_instruments(instruments or {})
        # Sharpe, daily P&L and the charts read up to a month of snapshots; re-reading them for every
        # scrape and dashboard frame would cost the engine's process far more than the freshness is worth.
        self.equity_ttl_ms = equity_ttl_s * 1000
        self._equity: tuple[int, list] | None = None
        # Today's split only changes with a new end snapshot (every minute), and reads every fill since the
        # base: computed once per window, not per frame.
        self._split: tuple[tuple[int, int], dict | None] | None = None

    def know_instruments(self, instruments: Mapping[str, Instrument]) -> None:
        """Display precision per market: the venue's filters once the engine has loaded them, else inferred from
        the prices and quantities the venue accepted (orders and fills are on its grid)."""
        self._precision.update({key: (decimals(i.tick_size), decimals(i.step_size)) for key, i in instruments.items()})
        self._precision_exact = self._precision_exact | frozenset(instruments)
        self._quotes.update({key: i.quote for key, i in instruments.items()})

    async def _io(self, fn, *args, **kwargs):
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _equity_series(self, now_ms: int) -> list:
        if self._equity is None or not 0 <= now_ms - self._equity[0] < self.equity_ttl_ms:
            series = await self._io(self.store.equity_series, since_ms=now_ms - 32 * DAY_MS, shadow=self.shadow)
            self._equity = (now_ms, series)
        return self._equity[1]

    def _learn_precision(self, rows: list[dict]) -> None:
        """Widen inferred precision with venue-given prices and quantities (never the exact filters)."""
        for r in rows:
            key = f"{r['venue']}:{r['symbol']}"
            if key in self._precision_exact:
                continue
            seen = self._precision.get(key, (None, None))
            self._precision[key] = tuple(  # type: ignore[assignment]
                old if new is None else new if old is None else max(old, new)
                for old, new in zip(seen, (_decimals_of(r.get("price")), _decimals_of(r.get("qty"))), strict=True))

    def _with_precision(self, rows: list[dict]) -> list[dict]:
        for r in rows:
            price, qty = self._precision.get(f"{r['venue']}:{r['symbol']}", (None, None))
            r["price_decimals"], r["qty_decimals"] = price, qty
        return rows

    def _store_figures(self, now_ms: int, series: list) -> dict:
        funding = self.store.ledger(kind="funding", shadow=self.shadow)
        positions = self.store.positions(shadow=self.shadow)
        state = None if self.controls else read_state(self.store)
        modules = None if self.recorder else latest_module_outputs(
            self.store.events(kind=MODULE_STATUS, limit=len(MODULES) * 8))
        window = daily_window(series, now_ms)
        fills: list = []
        if window is None:
            self._split = None
        elif self._split is None or self._split[0] != window:
            fills = self.store.fills(since_ms=window[0] + 1, shadow=self.shadow)
            marks = {f"{p.venue}:{p.symbol}": p.mark_price for p in positions}
            self._split = (window, daily_pnl_split(series, now_ms, fills, funding, marks))
        venue_values: list[dict] = []
        if any(f"{p.venue}:{p.symbol}" not in self._precision_exact for p in positions):
            # Marks may be book mid-prices (half a tick), so only quantities are learnt from positions.
            venue_values = [{"venue": p.venue, "symbol": p.symbol, "price": None, "qty": p.qty} for p in positions]
            venue_values += redact(self.store.orders(shadow=self.shadow, limit=200)) + redact(fills)
        return {
            "venue_values": venue_values,
            "funding_captured_usd": float(sum((Decimal(str(r["amount"])) for r in funding
                                               if r["strategy"] == CARRY_STRATEGY), Decimal(0))),
            "sharpe_ratio_rolling": sharpe_ratio_rolling(series, now_ms),
            "daily_pnl_usd": daily_pnl_usd(series, now_ms),
            "daily_pnl_split": None if self._split is None else self._split[1],
            "positions": [redact(p) | {"unrealized_pnl": str(p.unrealized_pnl), "notional": str(p.notional)}
                          for p in positions],
            "state": state,
            "modules": modules,
            "unresolved_orders": unresolved_orders(self.store, shadow=self.shadow),
        }

    async def metrics_snapshot(self) -> dict:
        now = self.clock()
        stored = await self._io(self._store_figures, now, await self._equity_series(now))
        self._learn_precision(stored["venue_values"])  # here, on the loop's thread, like orders() and trades()
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
                     "directional": None, "win_rate_pct": None, "win_rate_by_strategy": {}}
        health["source"] = "engine" if rec is not None else "store"
        health["unresolved_orders"] = stored["unresolved_orders"]  # outcome unknown at the venue, headroom held
        health["trading_state"] = await self.controls.trading_state() if self.controls else stored["state"]
        strat["delta_neutral"]["funding_captured_usd"] = stored["funding_captured_usd"]
        performance = {
            "sharpe_ratio_rolling": stored["sharpe_ratio_rolling"],
            "daily_pnl_usd": stored["daily_pnl_usd"],
            "daily_pnl_split": stored["daily_pnl_split"],
            "win_rate_pct": strat.pop("win_rate_pct"),
            "win_rate_by_strategy": strat.pop("win_rate_by_strategy"),
        }
        return redact({
            "ts_ms": now,
            # What the page says about the process it shows: the mode the engine runs in (or, read-only,
            # the mode of the config that names this store) and which clock every timestamp comes from.
            "engine": {"mode": None if self.mode is None else self.mode.value,
                       "mode_source": "config" if self.controls is None else "engine",
                       "read_only": self.controls is None, "clock": self.clock_kind, "clock_note": self.clock_note,
                       "usd_decimals": USD_DECIMALS,
                       "startup": None if self.startup is None else self.startup()},
            "system_health": health,
            "strategy_performance": {**strat, "performance": performance},
            "current_positions": self._with_precision(stored["positions"]),
        })

    async def orders(self, *, open_only: bool = False, limit: int = 100) -> list[dict]:
        rows = redact(await self._io(self.store.orders, open_only=open_only, shadow=self.shadow, limit=limit))
        self._learn_precision(rows)
        return self._with_precision(rows)

    async def trades(self, *, limit: int = 100) -> list[dict]:
        def newest() -> list:
            # fills() is oldest-first; the API shows the newest `limit`, so read the last hour first and widen
            # only when that holds fewer (an active engine would otherwise read a month of fills per frame).
            now = self.clock()
            for span in (3_600_000, DAY_MS, 30 * DAY_MS):
                rows = self.store.fills(shadow=self.shadow, since_ms=now - span)
                if len(rows) >= limit:
                    break
            return rows[-limit:][::-1]
        rows = redact(await self._io(newest))
        self._learn_precision(rows)
        return self._with_precision(rows)

    async def events(self, *, limit: int = 100, kind: str | None = None) -> list[dict]:
        return redact(await self._io(self.store.events, limit=limit, kind=kind))

    async def signals(self) -> dict[str, dict]:
        if self.recorder is not None:
            return redact(self.recorder.module_outputs())
        events = await self._io(self.store.events, limit=len(MODULES) * 8, kind=MODULE_STATUS)
        return redact(latest_module_outputs(events))

    async def prices(self) -> dict:
        if self.recorder is None:
            return {}
        return {market: {"candles": [list(c) for c in candles], "quote": self._quotes.get(market),
                         "price_decimals": self._precision.get(market, (None, None))[0]}
                for market, candles in self.recorder.candles().items()}

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

    async def status(self) -> dict:
        ready, reasons = await self.readiness()
        if self.startup is None:
            out = {"phase": None, "detail": "no engine attached: read-only view of the store", "since_ms": None,
                   "waiting_for": []}
        else:
            out = self.startup()
        health = None if self.health is None else await self._io(self.health)
        return redact(out | {"health": health, "ready": ready, "reasons": reasons})

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
