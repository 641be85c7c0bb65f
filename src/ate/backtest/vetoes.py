"""Veto and warm-up periods of a run, read from its decisions, and why the results depend on the start date.

A period is a run of consecutive decisions in which one module kept one veto scope (or stayed in
WARMUP): module, scope, from (first decision in it), to (first decision after it, or the run's end while
it still holds), the reason given at its start and at its end. A trader reading "8 years, 26 trades" sees
here that directional was vetoed from month three on, by which module, and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Modules whose state is built from the run's own history: their vetoes and warm-up make the outcome
# depend on where the run starts (kelly learns from the run's trades; the ladder from its equity).
# (reason, whether its warm-up counts: the ladder's first "no equity yet" decision changes nothing)
PATH_DEPENDENT = {"kelly": ("kelly sizes from this run's own closed trades (WARMUP under 20, veto at f = 0)", True),
                  "emergency": ("the emergency ladder reacts to this run's own equity drawdowns", False)}


def periods(decisions: Sequence[dict[str, Any]], end_ms: int) -> dict[str, list[dict[str, Any]]]:
    """{"vetoes": [...], "warmup": [...]} over decision dicts (``Decision.to_dict``) in time order."""
    open_: dict[tuple[str, str, str], dict[str, Any]] = {}
    closed: list[dict[str, Any]] = []
    for d in decisions:
        seen: dict[tuple[str, str, str], str] = {}
        for name, out in d["outputs"].items():
            for v in out.get("vetoes") or ():
                seen.setdefault(("veto", name, v.get("scope", "")), v.get("reason", ""))
            if out.get("status") == "WARMUP":
                seen.setdefault(("warmup", name, ""), out.get("reason", ""))
        for key in [k for k in open_ if k not in seen]:
            p = open_.pop(key)
            p["to_ms"] = d["ts"]
            closed.append(p)
        for key, reason in seen.items():
            p = open_.get(key)
            if p is None:
                open_[key] = {"kind": key[0], "module": key[1], "scope": key[2], "from_ms": d["ts"], "to_ms": None,
                              "reason": reason, "last_reason": reason, "decisions": 1, "open_at_end": False}
            else:
                p["last_reason"] = reason
                p["decisions"] += 1
    for p in open_.values():
        p["to_ms"], p["open_at_end"] = end_ms, True
        closed.append(p)
    closed.sort(key=lambda p: (p["from_ms"], p["module"], p["scope"]))
    return {"vetoes": [_public(p) for p in closed if p["kind"] == "veto"],
            "warmup": [_public(p) for p in closed if p["kind"] == "warmup"]}


def _public(p: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in p.items() if k != "kind"}
    if out["scope"] == "":
        del out["scope"]
    return out


def start_date_dependence(found: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Why this run's results would change with another start date (empty: nothing found)."""
    out = []
    for module, (why, warmup_counts) in PATH_DEPENDENT.items():
        hits = [p for p in found["vetoes"] + (found["warmup"] if warmup_counts else []) if p["module"] == module]
        if hits:
            out.append(f"{module}: {why}; {len(hits)} period(s) in this run")
    return out
