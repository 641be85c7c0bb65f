"""Fixtures: a simulated world on loopback with a manual replay clock (tests advance it)."""

from __future__ import annotations

import pytest
from sim_core_support import ROOT, sim_config

from ate.sim.binance import BinanceFace
from ate.sim.clock import SteppingClock
from ate.sim.runner import run_simulator


@pytest.fixture
async def binance_sim():
    """Binance Spot + USD-M faces over real June 2025 data, replay clock driven by the test."""
    async with run_simulator(sim_config(), clock=SteppingClock(), faces=[BinanceFace()], base_dir=ROOT) as sim:
        yield sim
