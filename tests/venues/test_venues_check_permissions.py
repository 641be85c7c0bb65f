"""`ate check` judges what the API key may do, as the simulator's Binance face reports it per sim account
(GET /sapi/v1/account/apiRestrictions): withdrawals FAIL unless the config allows them, no IP restriction
WARN, every verdict with the reason and what to change at the exchange."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ate.commands.venues import run_checks
from ate.config.models import EngineConfig
from ate.config.sim import SimConfig
from ate.sim.clock import ManualClock
from ate.sim.runner import run_simulator
from ate.venues.check import FAIL, OK, WARN

REPO = Path(__file__).resolve().parents[2]
SPOT = "data/binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"
START_MS = 1748822400000
pytestmark = pytest.mark.skipif(not (REPO / SPOT).exists(), reason="simulator data files absent")
ACCOUNTS = [
    {"id": "careful", "binance_api_key": "careful-key", "binance_api_secret": "careful-secret"},
    {"id": "careless", "binance_api_key": "careless-key", "binance_api_secret": "careless-secret",
     "key_can_withdraw": True, "key_ip_restricted": False},
]


class SimTime:
    def __init__(self, sim) -> None:
        self.sim = sim

    def now_ms(self) -> int:
        return self.sim.clock.now_ms()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


@pytest.fixture
async def sim():
    cfg = SimConfig.model_validate({"speed": 0, "start_ms": START_MS, "accounts": ACCOUNTS,
                                    "markets": [{"venue": "binance-spot", "symbol": "BTCUSDT", "data": SPOT}]})
    async with run_simulator(cfg, clock=ManualClock(START_MS), base_dir=REPO) as s:
        yield s


def config(sim, account: str, **binance) -> EngineConfig:
    url = sim.url("binance-spot", "rest")
    return EngineConfig.model_validate({"mode": "shadow", "venues": {
        "binance": {"spot_rest_url": url, "usdm_rest_url": url, "api_key": f"{account}-key",
                    "api_secret": f"{account}-secret", **binance},
        "backpack": {"enabled": False}, "deribit": {"enabled": False}}})


def verdicts(rows) -> dict:
    return {r.check: (r.status, r.detail) for r in rows if r.venue == "binance"}


async def test_a_key_that_reads_and_trades_only_from_known_ips_passes(sim):
    got = verdicts(await run_checks(config(sim, "careful"), clock=SimTime(sim)))
    assert got["withdrawals"] == (OK, "key cannot withdraw")
    assert got["ip restriction"] == (OK, "key restricted to trusted IPs")
    assert "transfers" not in got


async def test_a_key_that_can_withdraw_fails_and_says_what_to_change(sim):
    got = verdicts(await run_checks(config(sim, "careless"), clock=SimTime(sim)))
    status, detail = got["withdrawals"]
    assert status == FAIL
    assert "untick 'Enable Withdrawals'" in detail and "venues.binance.allow_withdrawal_keys" in detail
    status, detail = got["ip restriction"]
    assert status == WARN and "Restrict access to trusted IPs only" in detail


async def test_an_explicitly_allowed_withdrawal_key_is_a_warning(sim):
    rows = await run_checks(config(sim, "careless", allow_withdrawal_keys=True), clock=SimTime(sim))
    assert verdicts(rows)["withdrawals"] == (WARN, "key can withdraw (accepted by venues.binance."
                                                   "allow_withdrawal_keys)")
    assert [r for r in rows if r.status == FAIL and r.venue == "binance"] == []  # (no USD-M in this world)
