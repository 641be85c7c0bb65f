"""Shadow (or paper) session vs backtest over the same window: where signals and would-be trades differ.

The session's records come from the store: signal decisions are events of kind ``signal_decision`` whose
``data`` is ``Decision.to_dict()``; would-be orders are the orders of the hypothetical book (``shadow=True``:
paper and shadow alike). The backtest replays the window through the same engine. On the same data there should
be no difference; each one found is listed with its most likely cause, found by comparing inputs before
outputs (the bar the decision was made on, then each module's status and vote, then the combined vote).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ate.sim.executor import order_row

VOTE_TOL = 1e-9  # floating-point noise between two runs of the same code on the same data is zero


@dataclass(slots=True)
class Difference:
    ts_ms: int
    kind: str  # decision | order
    what: str
    cause: str
    session: Any = None
    backtest: Any = None


@dataclass(slots=True)
class Comparison:
    decisions_session: int
    decisions_backtest: int
    orders_session: int
    orders_backtest: int
    differences: list[Difference] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {
            "decisions": {"session": self.decisions_session, "backtest": self.decisions_backtest},
            "orders": {"session": self.orders_session, "backtest": self.orders_backtest},
            "identical": self.identical,
            "differences": [{"ts_ms": d.ts_ms, "kind": d.kind, "what": d.what, "cause": d.cause,
                             "session": d.session, "backtest": d.backtest} for d in self.differences],
        }


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= VOTE_TOL * max(1.0, abs(a), abs(b))
    return a == b


def _vote(out: dict[str, Any]) -> tuple[Any, Any]:
    v = out.get("vote") or {}
    return v.get("side"), v.get("confidence")


def decision_cause(s: dict[str, Any], b: dict[str, Any]) -> tuple[str, str, Any, Any] | None:
    """(what, cause, session value, backtest value) of the first difference, inputs first; None if equal."""
    sb, bb = s.get("bar") or {}, b.get("bar") or {}
    for k in ("open_ms", "open", "high", "low", "close", "volume", "complete"):
        if not _close(sb.get(k), bb.get(k)):
            return (f"bar.{k}", "input candle differs: the session saw different market data (gap, late or "
                    "revised candle)", sb, bb)
    so, bo = s.get("outputs") or {}, b.get("outputs") or {}
    for name in sorted(set(so) | set(bo)):
        x, y = so.get(name), bo.get(name)
        if x is None or y is None:
            return (f"outputs.{name}", "module missing on one side (different config or version)", x, y)
        if x.get("status") != y.get("status"):
            return (f"outputs.{name}.status", f"{name} status differs: history/warm-up or data freshness "
                    "(e.g. STALE live, or a shorter back-fill)", x.get("status"), y.get("status"))
        xv, yv = _vote(x), _vote(y)
        if xv[0] != yv[0] or not _close(xv[1], yv[1]):
            return (f"outputs.{name}.vote", f"{name} vote differs on the same bar: module state diverged "
                    "(earlier inputs or persisted state)", x.get("vote"), y.get("vote"))
        if not _close(x.get("size_multiplier"), y.get("size_multiplier")):
            return (f"outputs.{name}.size_multiplier", f"{name} multiplier differs: module state diverged",
                    x.get("size_multiplier"), y.get("size_multiplier"))
        if sorted(map(str, x.get("vetoes") or [])) != sorted(map(str, y.get("vetoes") or [])):
            return (f"outputs.{name}.vetoes", f"{name} vetoes differ", x.get("vetoes"), y.get("vetoes"))
    sc, bc = s.get("combined") or {}, b.get("combined") or {}
    if sc.get("side") != bc.get("side") or not _close(sc.get("confidence"), bc.get("confidence")):
        return ("combined", "combiner differs with equal module outputs: different combiner config", sc, bc)
    si, bi = s.get("intent") or {}, b.get("intent") or {}
    if si.get("kind") != bi.get("kind") or si.get("side") != bi.get("side"):
        return ("intent", "intent differs with equal votes: position or state differed (e.g. a fill the other "
                "side did not have)", si, bi)
    return None


def compare_decisions(session: Iterable[dict[str, Any]], backtest: Iterable[dict[str, Any]],
                      start_ms: int, end_ms: int) -> tuple[int, int, list[Difference]]:
    # a decision is one market's (several when directional trades a list of markets; then each names it)
    s_by = {(d["ts"], d.get("market", "")): d for d in session if start_ms < d["ts"] <= end_ms}
    b_by = {(d["ts"], d.get("market", "")): d for d in backtest if start_ms < d["ts"] <= end_ms}
    out = []
    for ts, market in sorted(set(s_by) | set(b_by)):
        s, b = s_by.get((ts, market)), b_by.get((ts, market))
        on = f"{market}: " if market else ""
        if s is None:
            out.append(Difference(ts, "decision", f"{on}missing in session",
                                  "the session recorded no decision at this bar (not running, or its candle "
                                  "never closed live)", None, b.get("intent")))
        elif b is None:
            out.append(Difference(ts, "decision", f"{on}missing in backtest",
                                  "the backtest data has no bar here (gap in the recorded file)", s.get("intent"), None))
        else:
            found = decision_cause(s, b)
            if found is not None:
                what, cause, sv, bv = found
                out.append(Difference(ts, "decision", on + what, cause, sv, bv))
    return len(s_by), len(b_by), out


def _order_key(o: dict[str, Any]) -> tuple[int, str, str, str]:
    return (o["ts_ms"], o["strategy"], o["market"], o["side"])


def compare_orders(session: Sequence[dict[str, Any]], backtest: Sequence[dict[str, Any]]) -> list[Difference]:
    """Would-be orders matched by (time, strategy, market, side); quantity and price must agree."""
    s_by: dict[tuple, list[dict]] = {}
    for o in session:
        s_by.setdefault(_order_key(o), []).append(o)
    b_by: dict[tuple, list[dict]] = {}
    for o in backtest:
        b_by.setdefault(_order_key(o), []).append(o)
    out = []
    for key in sorted(set(s_by) | set(b_by)):
        ss, bs = s_by.get(key, []), b_by.get(key, [])
        for s, b in zip(ss, bs, strict=False):
            if Decimal(s["qty"]) != Decimal(b["qty"]) or s["price"] != b["price"]:
                cause = ("size differs: equity, balances or multipliers differed at decision time"
                         if Decimal(s["qty"]) != Decimal(b["qty"]) else
                         "price differs: the book at decision time differed (live book vs replayed candle path)")
                out.append(Difference(key[0], "order", f"{key[1]} {key[2]} {key[3]}", cause, s, b))
        for s in ss[len(bs):]:
            out.append(Difference(key[0], "order", f"{key[1]} {key[2]} {key[3]}",
                                  "order only in the session: the backtest did not decide to trade here", s, None))
        for b in bs[len(ss):]:
            out.append(Difference(key[0], "order", f"{key[1]} {key[2]} {key[3]}",
                                  "order only in the backtest: the session did not decide to trade here", None, b))
    return out


def compare(session_decisions: Sequence[dict[str, Any]], backtest_decisions: Sequence[dict[str, Any]],
            session_orders: Sequence[dict[str, Any]], backtest_orders: Sequence[dict[str, Any]],
            start_ms: int, end_ms: int) -> Comparison:
    ns, nb, diffs = compare_decisions(session_decisions, backtest_decisions, start_ms, end_ms)
    s_orders = [o for o in session_orders if start_ms <= o["ts_ms"] <= end_ms]
    b_orders = [o for o in backtest_orders if start_ms <= o["ts_ms"] <= end_ms]
    diffs += compare_orders(s_orders, b_orders)
    diffs.sort(key=lambda d: (d.ts_ms, d.kind))
    return Comparison(ns, nb, len(s_orders), len(b_orders), diffs)


def session_records(store: Any, start_ms: int, end_ms: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(decision dicts, order rows) a session recorded in the store within [start, end]."""
    events = store.events(limit=10_000_000, kind="signal_decision", since_ms=start_ms)
    decisions = [ev.data for ev in events if ev.ts_ms <= end_ms and "ts" in ev.data]
    orders = [order_row(o) for o in store.orders(shadow=True) if start_ms <= o.created_ms <= end_ms]
    return decisions, orders
