"""Trading state, today's loss and the equity peak survive kill -9 of a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest

from ate.model import TradingState
from ate.risk import DailyLossTracker, TradingStateKeeper
from ate.risk.daily import DAY_MS
from ate.store import Store

D = Decimal
DAY = 1_764_028_800_000  # 2025-11-25 00:00 UTC

CHILD = textwrap.dedent("""
    import sys, time
    from decimal import Decimal as D
    from ate.model import TradingState
    from ate.risk import DailyLossTracker, TradingStateKeeper
    from ate.store import Store

    store = Store(sys.argv[1])
    now = [int(sys.argv[2])]
    clock = lambda: now[0]
    keeper = TradingStateKeeper(store, clock)
    daily = DailyLossTracker(store, D("300"), clock, persist_every_ms=10**12)
    for minutes, equity in ((0, "10000"), (60, "10400"), (120, "10100"), (180, "10050")):
        now[0] = int(sys.argv[2]) + minutes * 60_000
        daily.update(D(equity))
    keeper.set(TradingState.REDUCING, "emergency", "level 2")
    print("READY", flush=True)
    time.sleep(600)
""")


@pytest.mark.timeout(60)
def test_state_loss_and_peak_survive_sigkill(tmp_path):
    url = f"sqlite:///{tmp_path / 'ate.db'}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, str(DAY + 9 * 3_600_000)],
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        lines = iter(child.stdout.readline, "")
        assert any(line.strip() == "READY" for line in lines)  # log lines come first
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL

    store = Store(url)
    try:
        now = [DAY + 12 * 3_600_000]  # later the same day
        clock = lambda: now[0]  # noqa: E731
        assert TradingStateKeeper(store, clock).state is TradingState.REDUCING
        daily = DailyLossTracker(store, D("300"), clock)
        assert daily.peak == D("10400")
        # the day's anchor is still 10,000 (the restart does not re-anchor at 9,800)
        assert daily.update(D("9800")) == D("200") and daily.drawdown == pytest.approx(1 - 9800 / 10400)
        now[0] = DAY + DAY_MS + 60_000  # next day: anchored at the last equity before midnight
        assert daily.update(D("9790")) == D("10")
    finally:
        store.close()
