"""A world in the wall clock mode at speed 60, as `ate simulate` serves it: Binance Spot (1m data with 1h
history), USD-M (1h data, real funding), Backpack spot and perp, Deribit."""

from __future__ import annotations

from sim_backpack_support import KEY as BP_KEY
from sim_core_support import KEY, ROOT, SECRET

from ate.config.sim import SimConfig

SPEED = 60


def wall_config(**overrides) -> SimConfig:
    return SimConfig.model_validate({
        "speed": SPEED, "clock": "wall",
        "accounts": [{"id": "alice", "binance_api_key": KEY, "binance_api_secret": SECRET,
                      "backpack_public_key": BP_KEY,
                      "balances": {"binance-spot": {"USDT": "100000", "BTC": "1"}, "binance-usdm": {"USDT": "50000"},
                                   "backpack": {"USDC": "100000", "BTC": "1"}}}],
        "markets": [
            {"venue": "binance-spot", "symbol": "BTCUSDT", "min_size": 0.5,
             "data": "data/binance_spot_BTCUSDT_1m_2026-03-15_2026-03-22.csv.gz",
             "history": "data/binance_spot_BTCUSDT_1h.csv.gz"},
            {"venue": "binance-usdm", "symbol": "BTCUSDT", "min_size": 0.5,
             "data": "data/binance_usdm_BTCUSDT_perp_1h_2026-01-01_2026-05-17.csv.gz",
             "funding": "data/binance_usdm_BTCUSDT_funding.csv"},
            {"venue": "backpack", "symbol": "BTC_USDC", "min_size": 0.5,
             "data": "data/binance_spot_BTCUSDT_1m_2026-03-15_2026-03-22.csv.gz"},
            {"venue": "backpack", "symbol": "BTC_USDC_PERP", "min_size": 0.5,
             "data": "data/bybit_linear_BTCUSDT_1m_2026-02-27_2026-03-29.csv.gz",
             "funding": "data/binance_usdm_BTCUSDT_funding.csv"},
        ],
        "dvol": {"BTC": str(ROOT / "data" / "deribit_BTC_DVOL_1d.csv")},
        **overrides,
    })
