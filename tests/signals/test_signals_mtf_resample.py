"""multi_timeframe at every decision equals an independent pandas resample of the whole real 1h history.

Invariant: at the decision made when a 1h candle closing at T is fed, the 4h and 1d directions are those
of Supertrend(10, 3) over the 4h / 1d bars pandas builds from the same hourly candles (indexed by close
time, ``closed="right", label="right"``), using every bar labelled ≤ T. In particular, at a 4h or midnight
boundary the bar that the candle itself closes is already counted (the engine completes every timeframe a
candle closes before it decides). The reference Supertrend runs on TA-Lib's Wilder ATR, not ate's.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from ate.data.loaders import load_candles
from ate.signals.engine import SignalEngine
from ate.signals.garch import GarchFit

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
HOUR_MS = 3_600_000


def supertrend_directions(df: pd.DataFrame, n: int = 10, mult: float = 3.0) -> np.ndarray:
    """Direction (+1/-1, 0 before the first ATR) after each bar of `df` (columns high, low, close)."""
    h, lo, c = (df[k].to_numpy(dtype=float) for k in ("high", "low", "close"))
    atr = talib.ATR(h, lo, c, timeperiod=n)
    mid = (h + lo) / 2
    bu, bl = mid + mult * atr, mid - mult * atr
    out = np.zeros(len(df), dtype=int)
    valid = ~np.isnan(atr)
    if not valid.any():
        return out
    first = int(np.argmax(valid))
    fu, fl, d = bu[first], bl[first], 1
    out[first] = d
    for i in range(first + 1, len(df)):
        nfu = bu[i] if (bu[i] < fu or c[i - 1] > fu) else fu
        nfl = bl[i] if (bl[i] > fl or c[i - 1] < fl) else fl
        if d == 1 and c[i] < fl:
            d = -1
        elif d == -1 and c[i] > fu:
            d = 1
        fu, fl = nfu, nfl
        out[i] = d
    return out


def expected_directions(hourly: pd.DataFrame, rule: str) -> pd.Series:
    """Direction of the latest `rule` bar labelled at or before each close time."""
    bars = hourly.resample(rule, closed="right", label="right").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last"}).dropna()
    dirs = pd.Series(supertrend_directions(bars), index=bars.index)
    return dirs.reindex(hourly.index, method="ffill").fillna(0).astype(int)


def _no_fit(_returns: np.ndarray) -> GarchFit:
    raise RuntimeError("garch is not under test here")  # garch reports ERROR; multi_timeframe is unaffected


@pytest.mark.parametrize("asset", ["BTC", "ETH"])
def test_multi_timeframe_equals_pandas_resample_at_every_decision(asset):
    path = SHARED / f"binance_spot_{asset}USDT_1h.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} not present")
    candles = load_candles(path)
    engine = SignalEngine(market=f"binance:{asset}USDT", base_interval="1h", garch_fitter=_no_fit)
    got: dict[int, tuple[int, int]] = {}
    for c in candles:
        d = engine.on_candle(c)
        if d is not None:
            v = d.outputs["multi_timeframe"].values
            got[d.ts] = (v["dir_4h"] or 0, v["dir_1d"] or 0)
    hourly = pd.DataFrame(
        [(c.open_ms + HOUR_MS, c.open, c.high, c.low, c.close) for c in candles],
        columns=["close_ms", "open", "high", "low", "close"])
    ts = hourly.pop("close_ms").to_numpy()
    hourly.index = pd.to_datetime(ts, unit="ms", utc=True)
    want_4h, want_1d = expected_directions(hourly, "4h"), expected_directions(hourly, "1D")
    assert len(got) == len(candles)
    mismatches = [(int(t), got[int(t)], (a, b)) for t, a, b in zip(ts, want_4h.to_numpy(), want_1d.to_numpy(),
                                                                  strict=True) if got[int(t)] != (a, b)]
    assert mismatches == []
    boundaries = [int(t) for t in ts if t % (4 * HOUR_MS) == 0]
    assert len(boundaries) > 15_000  # the boundaries themselves are all checked above


def test_multi_timeframe_on_a_1m_base_equals_pandas_resample_at_every_decision():
    """The same on 1m BTC (base 1m, 1h decisions): 15m, 1h, 4h and 1d all complete before each decision."""
    path = Path(__file__).resolve().parents[2] / "data" / "binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} not present")
    day = 86_400_000
    candles = load_candles(path)
    first_day = -(-candles[0].open_ms // day) * day
    candles = [c for c in candles if c.open_ms >= first_day]  # whole buckets only, as pandas sees them
    engine = SignalEngine(market="binance:BTCUSDT", base_interval="1m", garch_fitter=_no_fit)
    got = {}
    for c in candles:
        d = engine.on_candle(c)
        if d is not None:
            v = d.outputs["multi_timeframe"].values
            got[d.ts] = tuple(v[f"dir_{tf}"] or 0 for tf in ("15m", "1h", "4h", "1d"))
    minutes = pd.DataFrame([(c.open_ms + 60_000, c.open, c.high, c.low, c.close) for c in candles],
                           columns=["close_ms", "open", "high", "low", "close"])
    minutes.index = pd.to_datetime(minutes.pop("close_ms").to_numpy(), unit="ms", utc=True)
    want = {tf: expected_directions(minutes, rule) for tf, rule in
            (("15m", "15min"), ("1h", "1h"), ("4h", "4h"), ("1d", "1D"))}
    assert len(got) > 600
    for ts, dirs in got.items():
        at = pd.Timestamp(ts, unit="ms", tz="UTC")
        assert dirs == tuple(int(want[tf].loc[at]) for tf in ("15m", "1h", "4h", "1d")), ts
