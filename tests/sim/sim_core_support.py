"""Shared by the sim-core and sim-Binance tests: keys and a simulator config over real June 2025 data.

A uniquely named module (not conftest) so that imports stay unambiguous when the whole suite runs.
"""

from __future__ import annotations

from pathlib import Path

from ate.config.sim import SimConfig

ROOT = Path(__file__).resolve().parents[2]
# The official example key pair of the Binance docs (§3.2) is one of the simulated accounts.
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
KEY, SECRET = "simkey1", "simsecret1"
START_MS = 1748822400000  # 2025-06-02 00:00 UTC: spot and perp data both present


def sim_config(**overrides) -> SimConfig:
    raw = {
        "speed": 0,
        "start_ms": START_MS,
        "accounts": [
            {"id": "alice", "binance_api_key": KEY, "binance_api_secret": SECRET,
             "balances": {"binance-spot": {"USDT": "100000", "BTC": "1"}, "binance-usdm": {"USDT": "50000"}}},
            {"id": "doc", "binance_api_key": DOC_KEY, "binance_api_secret": DOC_SECRET,
             "balances": {"binance-spot": {"USDT": "1000"}}},
        ],
        "markets": [
            {"venue": "binance-spot", "symbol": "BTCUSDT",
             "data": "data/binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz", "min_size": 0.5},
            {"venue": "binance-usdm", "symbol": "BTCUSDT",
             "data": "data/binance_usdm_BTCUSDT_perp_1m_2025-05-04_2025-06-24.csv.gz",
             "funding": "data/binance_usdm_BTCUSDT_funding.csv", "min_size": 0.5},
        ],
    }
    raw.update(overrides)
    return SimConfig.model_validate(raw)
