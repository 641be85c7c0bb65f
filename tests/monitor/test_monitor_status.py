"""`ate status` lists every module's status from start-up (not only after the first decision, an hour of
market time later), read from the store like the CLI does, while the engine runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))  # the engine's end-to-end harness
from engine_support import data_present, settle, world  # noqa: E402

from ate.monitor.status import stored_status  # noqa: E402
from ate.risk.events import MODULES  # noqa: E402
from ate.store import Store  # noqa: E402

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(60)]


async def test_every_module_is_listed_from_start_up(tmp_path, monkeypatch):
    async with world(tmp_path, monkeypatch, mode="shadow") as (sim, engine, drive, raw):
        await drive.run(5_000, 1_000)  # a few seconds: no decision bar yet
        assert await settle(lambda: len(engine.core.module_outputs) == len(MODULES))  # the first timer tick
        assert engine.store.events(kind="signal_decision") == []
        reader = Store(raw["store"]["url"])  # another process's view: `ate status`
        status = stored_status(reader)
        reader.close()
        live = {name: out.status.value for name, out in engine.core.module_outputs.items()}
        assert set(status["modules"]) == set(MODULES)
        assert status["modules"] == live and "UNKNOWN" not in status["modules"].values()
        assert status["venue_pauses"] == {}
