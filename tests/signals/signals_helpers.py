from __future__ import annotations

from pathlib import Path

import pytest

from ate.data.candles import Candle
from ate.data.loaders import load_candles

DATA = Path(__file__).resolve().parents[2] / "data"
HOUR = 3_600_000


@pytest.fixture(scope="session")
def btc_1h() -> list[Candle]:
    return load_candles(DATA / "binance_spot_BTCUSDT_1h.csv.gz")


def bars(closes, highs=None, lows=None, volumes=None, interval_ms=HOUR, start_ms=0) -> list[Candle]:
    """Candles from plain columns (open = close; H/L default to C ± 1)."""
    out = []
    for i, c in enumerate(closes):
        h = highs[i] if highs is not None else c + 1
        lo = lows[i] if lows is not None else c - 1
        v = volumes[i] if volumes is not None else 1.0
        out.append(Candle(start_ms + i * interval_ms, c, h, lo, c, v, interval_ms))
    return out
