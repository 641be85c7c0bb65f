"""A naming lint for the metrics ate exposes, over families parsed by prometheus_client's text parser."""

from __future__ import annotations

import re

NAME = re.compile(r"^ate_[a-z][a-z0-9_]*$")
NOT_BASE_UNITS = ("_pct", "_percent", "_ms", "_milliseconds", "_minutes", "_hours", "_kb", "_mb")


def lint(fams: dict) -> list[str]:
    """Prometheus naming conventions (prometheus.io/docs/practices/naming): prefix, snake case, base units,
    `_total` only and always on counters, no quantile label outside summaries, help text on every family."""
    problems = []
    for name, fam in fams.items():
        if not NAME.match(name):
            problems.append(f"{name}: not ate_ snake case")
        if any(name.endswith(u) or f"{u}_" in name for u in NOT_BASE_UNITS):
            problems.append(f"{name}: not a base unit")
        if not fam.documentation:
            problems.append(f"{name}: no help text")
        for sample in fam.samples:
            if fam.type == "counter" and not sample.name.endswith(("_total", "_created")):
                problems.append(f"{sample.name}: counter sample without _total")
            if fam.type != "counter" and sample.name.endswith("_total"):
                problems.append(f"{sample.name}: _total on a {fam.type}")
            if "quantile" in sample.labels and fam.type != "summary":
                problems.append(f"{sample.name}: quantile label on a {fam.type}")
    return problems
