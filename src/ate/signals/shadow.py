"""Signal counters for shadow mode (§9): per module counts by status, vote side, veto and action, the
last output, and the combiner's decisions; reported under `shadow.*`, never mixed with real P&L."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ate.signals.base import ModuleOutput
from ate.signals.engine import Decision


class _ModuleCounts:
    __slots__ = ("status", "vote", "veto", "action", "last")

    def __init__(self) -> None:
        self.status: Counter[str] = Counter()
        self.vote: Counter[str] = Counter()
        self.veto: Counter[str] = Counter()
        self.action: Counter[str] = Counter()
        self.last: dict[str, Any] | None = None


class SignalCounters:
    def __init__(self) -> None:
        self.modules: dict[str, _ModuleCounts] = {}
        self.decisions: Counter[str] = Counter()  # combiner side: BUY / SELL / NONE
        self.intents: Counter[str] = Counter()  # ENTER / EXIT / FLATTEN / NONE

    def record_output(self, out: ModuleOutput) -> None:
        m = self.modules.get(out.module)
        if m is None:
            m = self.modules[out.module] = _ModuleCounts()
        m.status[out.status.value] += 1
        if out.vote is not None:
            m.vote[out.vote.side.value] += 1
        for v in out.vetoes:
            m.veto[v.scope] += 1
        for a in out.actions:
            m.action[a.kind] += 1
        m.last = out.to_dict()

    def record_decision(self, d: Decision) -> None:
        for out in d.outputs.values():
            self.record_output(out)
        self.decisions[d.combined.side.value if d.combined.side else "NONE"] += 1
        self.intents[d.intent.kind] += 1

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready `shadow.modules` and `shadow.combiner` sections."""
        return {
            "shadow.modules": {
                name: {"status": dict(m.status), "vote": dict(m.vote), "veto": dict(m.veto),
                       "action": dict(m.action), "last": m.last}
                for name, m in self.modules.items()
            },
            "shadow.combiner": {"decisions": dict(self.decisions), "intents": dict(self.intents)},
        }
