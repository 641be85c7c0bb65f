"""Capital stages and the promotion gates, measured from the store (equity snapshots and events).

Which gates apply depends on the move (deployment-plan.md):
- canary → first stage: the canary success criteria — positive return over ≥ ``canary_min_days``, no API
  violation (HTTP 418 / -1003), all eight modules OK, no risk-limit breach;
- stage → next stage up to ``scaling_from_capital``: the same criteria over ≥ ``stage_min_days`` at the stage;
- beyond it (10k → 25k → 50k): the scaling gates — profitable over ≥ ``scaling_min_days``, Sharpe >
  ``scaling_min_sharpe``, max drawdown < ``scaling_max_drawdown``, no major failure.
Everything is measured since the current stage began. Returns are flow-adjusted: an equity snapshot's
``flows`` (deposits > 0, withdrawals < 0, included in its equity) never count as profit.

Profit withdrawal is advice only (never executed): 100 % of the last 7 days' profit while live for less
than ``withdraw_full_days``, then ``withdraw_fraction_after``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from ate.config.risk import CapitalStagesConfig
from ate.model import EngineEvent, Severity
from ate.risk.events import (
    API_VIOLATION,
    MAJOR_FAILURE,
    MODULE_STATUS,
    MODULES,
    PROMOTION,
    RISK_BREACH,
    STAGE_KEY,
)

DAY_MS = 86_400_000
ALL_EVENTS = 1_000_000


class GateStore(Protocol):
    def get_state(self, key: str, default: Any = None) -> Any: ...

    def set_state(self, key: str, value: Any, ts_ms: int | None = None) -> None: ...

    def add_event(self, ev: EngineEvent) -> None: ...

    def equity_series(self, *, since_ms: int | None = None,
                      shadow: bool = False) -> list[tuple[int, Decimal, Decimal]]: ...

    def events(self, *, limit: int = 100, kind: str | None = None,
               since_ms: int | None = None) -> list[EngineEvent]: ...


@dataclass(frozen=True, slots=True)
class Gate:
    name: str
    measured: str
    required: str
    passed: bool


@dataclass(slots=True)
class PromotionReport:
    current: str
    target: str | None
    since_ms: int
    gates: list[Gate] = field(default_factory=list)
    advice: str = ""

    @property
    def eligible(self) -> bool:
        return self.target is not None and all(g.passed for g in self.gates)

    @property
    def reasons(self) -> list[str]:
        if self.target is None:
            return [f"{self.current} is the last stage"]
        return [f"{g.name}: {g.measured} (needs {g.required})" for g in self.gates if not g.passed]


def stage_record(store: GateStore) -> dict:
    """{"index": None (canary) or stage index, "since_ms", "live_since_ms"}."""
    rec = store.get_state(STAGE_KEY)
    return rec if isinstance(rec, dict) else {"index": None, "since_ms": 0, "live_since_ms": None}


def stage_index(store: GateStore) -> int | None:
    return stage_record(store)["index"]


# -- measurements --

def growth_index(series: list[tuple[int, Decimal, Decimal]]) -> list[tuple[int, float]]:
    """Cumulative flow-adjusted growth of 1 unit at each snapshot."""
    out: list[tuple[int, float]] = []
    prev = None
    level = 1.0
    for ts, equity, flows in series:
        if prev is not None and prev > 0:
            level *= float(equity - flows) / float(prev)
        out.append((ts, level))
        prev = equity
    return out


def daily_returns(index: list[tuple[int, float]], now_ms: int) -> list[float]:
    """Returns of complete UTC days: last index of each day over the last index of the day before."""
    closes: dict[int, float] = {}
    for ts, level in index:
        day = ts - ts % DAY_MS
        if day + DAY_MS <= now_ms:
            closes[day] = level
    days = sorted(closes)
    return [closes[b] / closes[a] - 1 for a, b in zip(days, days[1:], strict=False) if b - a == DAY_MS]


def sharpe(returns: list[float], window: int = 30, min_days: int = 7) -> float | None:
    rs = returns[-window:]
    if len(rs) < min_days:
        return None
    mean = sum(rs) / len(rs)
    var = sum((r - mean) ** 2 for r in rs) / (len(rs) - 1)
    return None if var <= 0 else mean / math.sqrt(var) * math.sqrt(365)


def max_drawdown(index: list[tuple[int, float]]) -> float:
    peak, worst = 0.0, 0.0
    for _, level in index:
        peak = max(peak, level)
        worst = max(worst, 1 - level / peak)
    return worst


def _count(store: GateStore, kind: str, since: int) -> int:
    return len(store.events(limit=ALL_EVENTS, kind=kind, since_ms=since))


def _module_gate(store: GateStore, since: int) -> Gate:
    latest: dict[str, str] = {}
    for ev in reversed(store.events(limit=ALL_EVENTS, kind=MODULE_STATUS, since_ms=since)):  # oldest first
        latest[str(ev.data.get("module"))] = str(ev.data.get("status"))
    bad = [f"{m}={latest.get(m, 'unreported')}" for m in MODULES if latest.get(m) != "OK"]
    return Gate("modules", "all 8 OK" if not bad else ", ".join(bad), "all 8 modules OK", not bad)


def _performance_gates(store: GateStore, since: int, min_days: float) -> tuple[list[Gate], list]:
    series = store.equity_series(since_ms=since)
    index = growth_index(series)
    span = (index[-1][0] - index[0][0]) / DAY_MS if len(index) > 1 else 0.0
    ret = index[-1][1] - 1 if index else 0.0
    gates = [
        Gate("duration", f"{span:.1f} days", f">= {min_days:g} days", span >= min_days),
        Gate("return", f"{ret:+.2%}", "> 0", ret > 0),
    ]
    return gates, index


def evaluate(store: GateStore, cfg: CapitalStagesConfig, now_ms: int) -> PromotionReport:
    rec = stage_record(store)
    idx, since = rec["index"], int(rec.get("since_ms") or 0)
    stages = cfg.stages
    current = "canary" if idx is None else stages[idx].name
    nxt = 0 if idx is None else idx + 1
    report = PromotionReport(current, stages[nxt].name if nxt < len(stages) else None, since)
    report.advice = withdrawal_advice(store, cfg, now_ms, rec)
    if report.target is None:
        return report
    if stages[nxt].capital <= cfg.scaling_from_capital:
        min_days = cfg.canary_min_days if idx is None else cfg.stage_min_days
        perf, _ = _performance_gates(store, since, min_days)
        api = _count(store, API_VIOLATION, since)
        breaches = _count(store, RISK_BREACH, since)
        report.gates = [*perf,
                        Gate("api_violations", str(api), "0 (no 418 / -1003)", api == 0),
                        _module_gate(store, since),
                        Gate("risk_breaches", str(breaches), "0", breaches == 0)]
    else:
        perf, index = _performance_gates(store, since, cfg.scaling_min_days)
        s = sharpe(daily_returns(index, now_ms))
        dd = max_drawdown(index)
        failures = _count(store, MAJOR_FAILURE, since)
        report.gates = [*perf,
                        Gate("sharpe", "n/a (< 7 complete days)" if s is None else f"{s:.2f}",
                              f"> {cfg.scaling_min_sharpe:g}", s is not None and s > cfg.scaling_min_sharpe),
                        Gate("max_drawdown", f"{dd:.2%}", f"< {cfg.scaling_max_drawdown:.0%}",
                              dd < cfg.scaling_max_drawdown),
                        Gate("major_failures", str(failures), "0", failures == 0)]
    return report


def withdrawal_advice(store: GateStore, cfg: CapitalStagesConfig, now_ms: int, rec: dict) -> str:
    live_since = rec.get("live_since_ms")
    if live_since is None:
        return "no withdrawal advice before the first capital stage"
    series = store.equity_series(since_ms=now_ms - 7 * DAY_MS)
    if len(series) < 2:
        return "not enough equity history in the last 7 days"
    profit = series[-1][1] - series[0][1] - sum((f for _, _, f in series[1:]), Decimal(0))
    if profit <= 0:
        return f"no profit to withdraw this week ({profit:.2f} USD)"
    share = 1.0 if now_ms - live_since < cfg.withdraw_full_days * DAY_MS else cfg.withdraw_fraction_after
    return f"withdraw {profit * Decimal(repr(share)):.2f} USD ({share:.0%} of this week's profit {profit:.2f} USD)"


def promote(store: GateStore, cfg: CapitalStagesConfig, now_ms: int, who: str) -> PromotionReport:
    """Move up one stage if every gate passes (persisted, logged); otherwise change nothing."""
    report = evaluate(store, cfg, now_ms)
    if report.eligible:
        rec = stage_record(store)
        idx = 0 if rec["index"] is None else rec["index"] + 1
        live_since = rec.get("live_since_ms") or now_ms
        store.set_state(STAGE_KEY, {"index": idx, "since_ms": now_ms, "live_since_ms": live_since}, now_ms)
        store.add_event(EngineEvent(now_ms, PROMOTION, f"promoted {report.current} -> {report.target} by {who}",
                                    Severity.WARNING, {"from": report.current, "to": report.target, "who": who}))
    return report
