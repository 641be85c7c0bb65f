"""Fixtures for the monitor tests: a real engine view over SQLite (see monitor_harness)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from monitor_harness import (
    PLANTED_SECRET,
    TOKEN,
    EngineStandIn,
    ManualClock,
    fill_recorder,
    monitor_config,
    record_history,
)

from ate.monitor.recorder import MetricsRecorder
from ate.monitor.server import start_monitor
from ate.monitor.view import StoreView
from ate.store import Store


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="session")
def recorded_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recorded") / "ate.db"
    s = Store(f"sqlite:///{path}")
    record_history(s)
    s.close()  # last connection closed: WAL checkpointed into the file
    return path


@pytest.fixture
def store(recorded_db, tmp_path):
    shutil.copy(recorded_db, tmp_path / "ate.db")
    s = Store(f"sqlite:///{tmp_path}/ate.db")
    yield s
    s.close()


@pytest.fixture
def engine_view(store, clock, tmp_path):
    """(view, recorder, engine stand-in): the running engine's view, as the engine will build it."""
    rec = MetricsRecorder(clock)
    fill_recorder(rec, clock)
    engine = EngineStandIn(store, rec, clock, tmp_path)
    return StoreView(store, recorder=rec, controls=engine.controls, clock=clock), rec, engine


@pytest.fixture
async def monitor(engine_view):
    view, rec, controls = engine_view
    handle = await start_monitor(view, monitor_config(),
                                 env={"ATE_TEST_MONITOR_TOKEN": TOKEN, "BINANCE_API_SECRET": PLANTED_SECRET})
    yield handle, view, rec, controls
    await handle.stop()
