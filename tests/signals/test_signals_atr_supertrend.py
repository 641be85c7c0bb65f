"""atr_supertrend (§3.1): ATR = TA-Lib, Supertrend = an independent textbook reference, acceptance (b)(c)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib
from signals_helpers import bars

from ate.config.modules import AtrSupertrendConfig
from ate.signals.atr_supertrend import DOWN, UP, AtrSupertrend, Supertrend, WilderATR
from ate.signals.base import Side, Status

HOUR = 3_600_000


def test_atr14_equals_talib_on_real_1h(btc_1h):
    h = np.array([c.high for c in btc_1h])
    lo = np.array([c.low for c in btc_1h])
    c = np.array([x.close for x in btc_1h])
    ref = talib.ATR(h, lo, c, timeperiod=14)
    atr = WilderATR(14)
    ours = np.array([atr.update(a, b, d) for a, b, d in zip(h, lo, c, strict=True)])
    assert np.isnan(ours[:14]).all() and np.isnan(ref[:14]).all()
    rel = np.abs(ours[14:] - ref[14:]) / ref[14:]
    assert rel.max() <= 1e-9
    assert len(ours) > 70_000


def reference_supertrend(h, lo, c, n=10, m=3.0):
    """Textbook Supertrend over whole arrays (ATR from TA-Lib), written independently of the module."""
    atr = talib.ATR(h, lo, c, timeperiod=n)
    mid = (h + lo) / 2
    bu, bl = mid + m * atr, mid - m * atr
    fu, fl = np.full(len(c), np.nan), np.full(len(c), np.nan)
    direction = np.zeros(len(c), dtype=int)
    for t in range(n, len(c)):
        if t == n:
            fu[t], fl[t], direction[t] = bu[t], bl[t], 1
            continue
        fu[t] = bu[t] if (bu[t] < fu[t - 1] or c[t - 1] > fu[t - 1]) else fu[t - 1]
        fl[t] = bl[t] if (bl[t] > fl[t - 1] or c[t - 1] < fl[t - 1]) else fl[t - 1]
        if direction[t - 1] == 1:
            direction[t] = -1 if c[t] < fl[t - 1] else 1
        else:
            direction[t] = 1 if c[t] > fu[t - 1] else -1
    return fu, fl, direction


def test_supertrend_matches_reference_on_a_year_of_real_1h(btc_1h):
    year = btc_1h[-8760:]
    h = np.array([x.high for x in year])
    lo = np.array([x.low for x in year])
    c = np.array([x.close for x in year])
    fu, fl, ref_dir = reference_supertrend(h, lo, c)
    st = Supertrend(10, 3.0)
    flips = 0
    for t in range(len(c)):
        d = st.update(h[t], lo[t], c[t])
        assert d == ref_dir[t], t
        if t >= 10:
            assert st.upper == pytest.approx(fu[t], rel=1e-9) and st.lower == pytest.approx(fl[t], rel=1e-9)
            assert st.line == (st.lower if d == UP else st.upper)
        if t > 10 and ref_dir[t] != ref_dir[t - 1]:
            flips += 1
            # a flip happens exactly where the close crosses the previous opposite final band
            assert (c[t] < fl[t - 1]) if d == DOWN else (c[t] > fu[t - 1])
        elif t > 10:
            assert not ((c[t] < fl[t - 1]) if d == UP else (c[t] > fu[t - 1]))
    assert flips > 50


def test_acceptance_b_hand_checked_bands():
    closes = [100.0 + i for i in range(30)]
    candles = bars(closes) + bars([120.0], [129.0], [119.0], start_ms=30 * HOUR)
    st = Supertrend(10, 3.0)
    for i, c in enumerate(candles):
        d = st.update(c.high, c.low, c.close)
        if i < 10:
            assert d == 0 and math.isnan(st.atr.value)
            continue
        if i <= 29:
            assert st.atr.value == pytest.approx(2.0) and d == UP
            expected_fu = 116.0 if i <= 17 else 124.0 if i <= 25 else 132.0
            assert st.upper == pytest.approx(expected_fu)
        if i == 29:
            assert st.lower == pytest.approx(123.0)
    assert st.atr.value == pytest.approx(2.8)
    assert st.direction == DOWN and st.upper == pytest.approx(132.0) and st.line == pytest.approx(132.0)


def test_acceptance_c_rising_bars_buy_full_confidence_and_warmup():
    m = AtrSupertrend(AtrSupertrendConfig(), HOUR)
    candles = bars([100.0 + i for i in range(150)])
    for i, c in enumerate(candles):
        m.update(c)
        out = m.evaluate(c.close_ms)
        if i < 113:
            assert out.status is Status.WARMUP and out.vote.side is Side.HOLD and out.vote.confidence == 0
        else:
            assert out.status is Status.OK, i
    assert out.values["atr_pct"] == 50.0 and out.regime == "normal"
    assert out.vote.side is Side.BUY and out.vote.confidence == pytest.approx(1.0)
    assert out.values["st_dir"] == UP and out.values["sma_fast"] > out.values["sma_slow"]


def test_extreme_atr_vetoes_directional_and_falling_bars_sell():
    cfg = AtrSupertrendConfig()
    m = AtrSupertrend(cfg, HOUR)
    for c in bars([300.0 - i for i in range(150)]):
        m.update(c)
    out = m.evaluate(150 * HOUR)
    assert out.vote.side is Side.SELL and out.vote.confidence == pytest.approx(1.0) and not out.vetoes
    # one huge range bar: ATR jumps to the top of its 100-bar history → extreme
    m.update(bars([150.0], [170.0], [130.0], start_ms=150 * HOUR)[0])
    out = m.evaluate(151 * HOUR)
    assert out.regime == "extreme" and out.vote.side is Side.HOLD and out.vote.confidence == 1.0
    assert out.veto.scope == "directional"


def test_stale_and_gap_status():
    m = AtrSupertrend(AtrSupertrendConfig(), HOUR)
    for c in bars([100.0 + i for i in range(150)]):
        m.update(c)
    assert m.evaluate(150 * HOUR + 120_000).status is Status.OK
    assert m.evaluate(151 * HOUR + 120_001).status is Status.STALE
    m.update(bars([250.0], start_ms=155 * HOUR)[0])  # 4 missing bars > max_gap_bars 3
    assert m.evaluate(156 * HOUR).status is Status.DEGRADED
