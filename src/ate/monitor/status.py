"""`ate status`: what the store says about the engine, whether or not it is running."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from ate.monitor.pauses import stored_pauses
from ate.risk.events import MODULE_STATUS, MODULES

DAY_MS = 86_400_000
# A running engine writes this row on wall time (replayed clocks can move backwards between runs); a row
# older than the stale limit means the process died without saying so (kill -9).
HEARTBEAT_KEY = "engine.heartbeat"
HEARTBEAT_EVERY_MS = 2_000
HEARTBEAT_STALE_MS = 15_000


def heartbeat(pid: int, mode: str, running: bool, phase: str | None = None) -> dict[str, Any]:
    """`phase`: the start-up phase, or the ban start-up waits out (monitor.startup.StartupState.detail)."""
    return {"pid": pid, "mode": mode, "running": running, "phase": phase, "wall_ms": int(time.time() * 1000)}


def engine_running(store, now_wall_ms: int | None = None) -> bool:
    hb = store.get_state(HEARTBEAT_KEY)
    now = int(time.time() * 1000) if now_wall_ms is None else now_wall_ms
    return bool(hb) and bool(hb.get("running")) and now - int(hb.get("wall_ms", 0)) < HEARTBEAT_STALE_MS


RECENT = 500


def unresolved_orders(store, *, shadow: bool = False) -> list[dict[str, Any]]:
    """Open orders whose placement outcome the venue has not told yet: an `order_unresolved` alert and no
    `order_resolved` since (the executor raises both; the order keeps its risk headroom meanwhile)."""
    open_ids = {o.client_order_id for o in store.orders(open_only=True, shadow=shadow)}
    resolved = {e.data.get("order"): e.ts_ms for e in store.events(limit=RECENT, kind="order_resolved")}
    out = {}
    for e in store.events(limit=RECENT, kind="order_unresolved"):  # newest first
        for coid in e.data.get("orders") or [e.data.get("order")]:  # reconciliation lists several
            if coid in open_ids and coid not in out and resolved.get(coid, -1) < e.ts_ms:
                out[coid] = {"client_order_id": coid, "market": e.data.get("market"),
                             "since_ms": e.data.get("since_ms"), "alerted_ms": e.ts_ms,
                             "last_error": e.data.get("last_error")}
    return list(out.values())


def basis_veto(store) -> dict[str, Any] | None:
    """The arbitrage's quote-basis veto as its last events left it (None: never vetoed)."""
    last = [e for kind in ("arbitrage.basis_veto", "arbitrage.basis_resumed") for e in store.events(limit=1, kind=kind)]
    if not last:
        return None
    ev = max(last, key=lambda e: e.ts_ms)
    vetoed = ev.kind == "arbitrage.basis_veto"
    return {"vetoed": vetoed, "reason": ev.data.get("reason") if vetoed else None, "since_ms": ev.ts_ms,
            "rate": ev.data.get("rate")}


def arbitrage_stuck(store) -> dict[str, Any] | None:
    """The one-legged arbitrage attempt its last events report stuck (unmatched after its unwind retries),
    or None when none is (never stuck, or matched since)."""
    last = [e for kind in ("arbitrage.stuck", "arbitrage.unstuck") for e in store.events(limit=1, kind=kind)]
    if not last:
        return None
    ev = max(last, key=lambda e: e.ts_ms)
    if ev.kind != "arbitrage.stuck":
        return None
    return {"attempt": ev.data.get("attempt"), "residual": ev.data.get("residual"), "since_ms": ev.ts_ms,
            "message": ev.message}


def module_statuses(store) -> dict[str, str]:
    """Every module, from the engine's `module_status` events (written from start-up on, at every change);
    a module never reported is UNKNOWN."""
    out = dict.fromkeys(MODULES, "UNKNOWN")
    seen: set[str] = set()
    for ev in store.events(kind=MODULE_STATUS, limit=len(MODULES) * 16):  # newest first
        module = ev.data.get("module")
        if module in out and module not in seen:
            seen.add(module)
            out[module] = str(ev.data.get("status", "UNKNOWN"))
    return out


def stored_status(store, *, shadow: bool = False) -> dict[str, Any]:
    """`shadow`: report the hypothetical book a shadow run keeps apart from real P&L."""
    state = store.get_state("risk.trading_state") or {"state": "ACTIVE"}
    started = store.events(limit=1, kind="engine_started")
    stopped = store.events(limit=1, kind="engine_stopped")
    equity = store.equity_series(shadow=shadow)
    pnl_today = None
    if equity:
        last_ts = equity[-1][0]
        day = last_ts - last_ts % DAY_MS
        today = [e for e in equity if e[0] >= day]
        pnl_today = str(today[-1][1] - today[0][1] - sum((e[2] for e in today[1:]), Decimal(0)))
    running = engine_running(store)
    hb = store.get_state(HEARTBEAT_KEY) or {}
    return {
        "book": "hypothetical (paper/shadow)" if shadow else "real",
        "engine": {"last_started_ms": started[0].ts_ms if started else None,
                   "last_stopped_ms": stopped[0].ts_ms if stopped else None, "running_per_store": running,
                   "phase": hb.get("phase") if running else None},
        "trading_state": state,
        "modules": module_statuses(store),
        "venue_pauses": stored_pauses(store),
        "positions": [{"market": f"{p.venue}:{p.symbol}", "qty": str(p.qty), "entry": str(p.entry_price)}
                      for p in store.positions(shadow=shadow) if p.qty],
        "open_orders": [{"client_order_id": o.client_order_id, "market": f"{o.venue}:{o.symbol}",
                         "side": o.side.value, "qty": str(o.qty), "price": str(o.price), "status": o.status.value}
                        for o in store.orders(open_only=True, shadow=shadow)],
        "unresolved_orders": unresolved_orders(store, shadow=shadow),
        "arbitrage_basis": basis_veto(store),
        "arbitrage_stuck": arbitrage_stuck(store),
        "equity": str(equity[-1][1]) if equity else None,
        "pnl_today": pnl_today,
    }
