"""A small simulated world for the fault tests: the real June 2025 Binance data of sim_core_support,
cut to the hours around its start (the same rows, fewer of them), so each test builds its world in
milliseconds instead of replaying a month into memory."""

from __future__ import annotations

import functools
import gzip
import tempfile
from pathlib import Path

from sim_core_support import ROOT, START_MS, sim_config

from ate.config.sim import SimConfig

HOURS = 6


@functools.cache
def _cut(name: str) -> str:
    """The rows of data/<name> opening in [START_MS - 1 day, START_MS + HOURS), as a temporary gzip CSV."""
    with gzip.open(ROOT / "data" / name, "rt") as fh:
        lines = fh.read().splitlines()
    first, end = START_MS - 86_400_000, START_MS + HOURS * 3_600_000
    rows = [ln for ln in lines[1:] if first <= int(ln.split(",", 1)[0]) < end]
    out = Path(tempfile.mkdtemp(prefix="ate-faults-")) / name
    with gzip.open(out, "wt") as fh:
        fh.write("\n".join([lines[0], *rows]) + "\n")
    return str(out)


def small_config(**overrides) -> SimConfig:
    cfg = sim_config(**overrides)
    markets = [m.model_copy(update={"data": _cut(Path(m.data).name)}) for m in cfg.markets]
    return cfg.model_copy(update={"markets": markets})
