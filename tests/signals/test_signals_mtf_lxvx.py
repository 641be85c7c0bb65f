"""multi_timeframe (§3.2) and lxvx (§3.3): hand-checkable cases, WARMUP, rolling = batch."""

from __future__ import annotations

import numpy as np
import pytest
from signals_helpers import bars

from ate.config.modules import LxvxConfig, ModulesConfig, MultiTimeframeConfig
from ate.data.candles import INTERVAL_MS
from ate.signals.atr_supertrend import DOWN, UP
from ate.signals.base import Side, Status
from ate.signals.engine import SignalEngine
from ate.signals.lxvx import Lxvx
from ate.signals.multi_timeframe import MultiTimeframe, weigh_directions

W = MultiTimeframeConfig().weights


@pytest.mark.parametrize("dirs, side, conf", [
    ({"15m": UP, "1h": UP, "4h": DOWN, "1d": DOWN}, Side.HOLD, 0.5),
    ({"15m": DOWN, "1h": UP, "4h": UP, "1d": UP}, Side.BUY, 0.8),
    ({"15m": UP, "1h": UP, "4h": DOWN}, Side.BUY, 0.625),
    ({"15m": DOWN, "1h": DOWN, "4h": DOWN, "1d": UP}, Side.SELL, 0.8),
])
def test_weigh_directions(dirs, side, conf):
    vote = weigh_directions(dirs, W)
    assert vote.side is side and vote.confidence == pytest.approx(conf)


def _feed(m: MultiTimeframe, tf: str, closes: list[float]) -> None:
    for c in bars(closes, interval_ms=INTERVAL_MS[tf]):
        m.update(tf, c)


RISING = [100.0 + i for i in range(30)]
FALLING = [200.0 - i for i in range(30)]


def test_mtf_module_1d_missing_is_warmup_with_renormalised_vote():
    m = MultiTimeframe(MultiTimeframeConfig(), INTERVAL_MS["1m"])
    _feed(m, "15m", RISING)
    _feed(m, "1h", RISING)
    _feed(m, "4h", FALLING)
    _feed(m, "1d", RISING[:10])  # 10 days: not yet available (needs 11)
    out = m.evaluate(0)
    assert out.status is Status.WARMUP and out.values["available"] == ["15m", "1h", "4h"]
    assert out.vote.side is Side.BUY and out.vote.confidence == pytest.approx(0.625)
    m.update("1d", bars([110.0], start_ms=10 * INTERVAL_MS["1d"], interval_ms=INTERVAL_MS["1d"])[0])
    out = m.evaluate(0)  # the 11th day makes 1d available: up/up/down/up
    assert out.status is Status.OK and out.values["available"] == ["15m", "1d", "1h", "4h"]
    assert out.vote.side is Side.BUY and out.vote.confidence == pytest.approx(0.7)


def test_mtf_fewer_than_two_timeframes_is_warmup_hold_zero():
    m = MultiTimeframe(MultiTimeframeConfig(), INTERVAL_MS["1m"])
    _feed(m, "1h", RISING)
    _feed(m, "15m", RISING[:10])
    out = m.evaluate(0)
    assert out.status is Status.WARMUP and out.vote.side is Side.HOLD and out.vote.confidence == 0


def test_mtf_base_1h_is_degraded_without_15m():
    m = MultiTimeframe(MultiTimeframeConfig(), INTERVAL_MS["1h"])
    _feed(m, "1h", RISING)
    _feed(m, "4h", RISING)
    _feed(m, "1d", FALLING)
    out = m.evaluate(0)
    assert out.status is Status.DEGRADED and "15m" in out.reason
    assert out.vote.side is Side.BUY and out.vote.confidence == pytest.approx(0.6 / 0.8)


def test_mtf_1h_component_equals_atr_supertrend_direction(btc_1h):
    engine = SignalEngine(ModulesConfig(), base_interval="1h")
    n = 0
    for c in btc_1h[-3000:]:
        d = engine.on_candle(c)
        if d is None:
            continue
        atr, mtf = d.outputs["atr_supertrend"], d.outputs["multi_timeframe"]
        assert mtf.values["dir_1h"] == (atr.values["st_dir"] or None)
        n += 1
    assert n == 3000
    assert d.outputs["multi_timeframe"].status is Status.DEGRADED  # 15m unavailable on a 1h base


def test_lxvx_acceptance_case():
    closes = [100.0] * 99 + [100.6]
    highs = [100.0] * 99 + [101.0]
    lows = [100.0] * 99 + [100.4]
    vols = [1.0] * 99 + [3.0]
    m = Lxvx(LxvxConfig(), INTERVAL_MS["1h"])
    for i, c in enumerate(bars(closes, highs, lows, vols)):
        m.update(c)
        out = m.evaluate(c.close_ms)
        if i < 99:
            assert out.status is Status.WARMUP and out.vote.confidence == 0 and out.size_multiplier == 0.25
    assert out.status is Status.OK
    assert out.values["score"] == pytest.approx(3.0, rel=1e-12)
    assert out.values["vwap"] == pytest.approx(100.019608, abs=5e-7)
    assert out.values["deviation"] * 100 == pytest.approx(0.5803, abs=5e-5)
    assert out.vote.side is Side.BUY and out.vote.confidence == pytest.approx(0.85493, abs=5e-6)
    assert out.size_multiplier == 1.0


def test_lxvx_sell_hold_and_zero_volume():
    m = Lxvx(LxvxConfig(), INTERVAL_MS["1h"])
    for c in bars([100.0] * 99 + [99.6], [100.0] * 99 + [99.9], [100.0] * 99 + [99.5], [1.0] * 99 + [2.0]):
        m.update(c)
    out = m.evaluate(100 * INTERVAL_MS["1h"])
    assert out.vote.side is Side.SELL and 0.5 < out.vote.confidence < 1 and out.size_multiplier == 1.0
    m = Lxvx(LxvxConfig(), INTERVAL_MS["1h"])
    for c in bars([100.0] * 100, volumes=[1.0] * 100):
        m.update(c)
    out = m.evaluate(100 * INTERVAL_MS["1h"])
    assert out.vote.side is Side.HOLD and out.vote.confidence == 0.2 and out.values["score"] == 1.0
    m = Lxvx(LxvxConfig(), INTERVAL_MS["1h"])
    for c in bars([100.0] * 120, volumes=[0.0] * 120):
        m.update(c)
    out = m.evaluate(120 * INTERVAL_MS["1h"])
    assert out.status is Status.DEGRADED and out.vote.confidence == 0 and out.size_multiplier == 0.25


def test_lxvx_rolling_equals_batch_on_real_data(btc_1h):
    data = btc_1h[-5000:]
    h = np.array([c.high for c in data])
    lo = np.array([c.low for c in data])
    cl = np.array([c.close for c in data])
    v = np.array([c.volume for c in data])
    tp = (h + lo + cl) / 3
    m = Lxvx(LxvxConfig(), INTERVAL_MS["1h"])
    for t, c in enumerate(data):
        m.update(c)
        if t < 99:
            continue
        out = m.evaluate(c.close_ms)
        score = v[t] / v[t - 20:t].mean()
        vwap = (tp[t - 99:t + 1] * v[t - 99:t + 1]).sum() / v[t - 99:t + 1].sum()
        assert out.values["score"] == pytest.approx(score, rel=1e-9)
        assert out.values["vwap"] == pytest.approx(vwap, rel=1e-9)
        assert out.values["deviation"] == pytest.approx((cl[t] - vwap) / vwap, rel=1e-9, abs=1e-12)
