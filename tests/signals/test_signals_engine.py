"""SignalEngine: aggregation, one code path for 1m and 1h bases, never raising, state, config section."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from signals_helpers import DATA

from ate.config.models import EngineConfig
from ate.config.modules import ModulesConfig
from ate.data.candles import INTERVAL_MS, Candle
from ate.data.loaders import load_candles
from ate.signals.base import Side, Status
from ate.signals.combiner import decide
from ate.signals.engine import MODULE_ORDER, SignalEngine, _Cascade

M1 = DATA / "binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"
HOUR = INTERVAL_MS["1h"]


@pytest.fixture(scope="module")
def june_1m() -> list[Candle]:
    return load_candles(M1)


def test_cascade_1m_to_1h_equals_shipped_1h(june_1m, btc_1h):
    cascade = _Cascade(INTERVAL_MS["1m"], ["15m", "1h", "4h", "1d"])
    hours = [b for c in june_1m for tf, b in cascade.feed(c) if tf == "1h"]
    shipped = {c.open_ms: c for c in btc_1h}
    complete = [h for h in hours if h.complete]
    assert len(complete) == 719 and all(h.n_base == 60 for h in complete)
    assert hours[0].open_ms == 1748800800000  # 18:00; the partial 17:00 hour is not emitted
    for h in complete:
        s = shipped[h.open_ms]
        assert (h.open, h.high, h.low, h.close) == (s.open, s.high, s.low, s.close)
        assert h.volume == pytest.approx(s.volume, rel=1e-9)


def test_missing_minute_marks_every_containing_bucket_incomplete(june_1m):
    day = 1748822400000  # 2025-06-02 00:00
    hole = day + 5 * HOUR + 17 * 60_000
    cascade = _Cascade(INTERVAL_MS["1m"], ["15m", "1h", "4h", "1d"])
    out = [(tf, b) for c in june_1m if c.open_ms != hole for tf, b in cascade.feed(c)]
    containing = {tf: b for tf, b in out if b.open_ms <= hole < b.open_ms + b.interval_ms}
    assert set(containing) == {"15m", "1h", "4h", "1d"}
    assert not any(b.complete for b in containing.values())
    assert containing["1h"].n_base == 59 and containing["1d"].n_base == 1439
    others = [b for tf, b in out if b not in containing.values() and tf == "4h"]
    assert others and all(b.complete and b.n_base == 240 for b in others)


def _close(x, y) -> bool:
    """Equal, floats to 1e-9 relative (volumes summed from minutes differ from the 1h file in the last ulp)."""
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_close(x[k], y[k]) for k in x)
    if isinstance(x, list):
        return len(x) == len(y) and all(map(_close, x, y))
    if isinstance(x, float) and isinstance(y, float):
        return x == pytest.approx(y, rel=1e-9, abs=1e-12)
    return x == y


def _compare(a, b):
    assert _close(a.to_dict(), b.to_dict()), (a, b)


def test_1m_and_1h_bases_agree_on_the_same_hours(june_1m, btc_1h):
    """Live (1m aggregated) and a 1h backtest over the same data give the same decision-timeframe outputs."""
    e1m = SignalEngine(ModulesConfig())
    e1h = SignalEngine(ModulesConfig(), base_interval="1h")
    d1m = [d for c in june_1m if (d := e1m.on_candle(c)) is not None]
    start, end = d1m[0].bar.open_ms, d1m[-1].bar.open_ms
    d1h = [d for c in btc_1h if start <= c.open_ms <= end and (d := e1h.on_candle(c)) is not None]
    assert len(d1m) == len(d1h) == 719
    for a, b in zip(d1m, d1h, strict=True):
        for m in ("atr_supertrend", "lxvx", "bitvol", "garch", "kelly"):
            _compare(a.outputs[m], b.outputs[m])
    assert d1m[-1].outputs["atr_supertrend"].status is Status.OK
    assert d1m[-1].outputs["multi_timeframe"].status is Status.OK
    assert d1h[-1].outputs["multi_timeframe"].status is Status.DEGRADED


def test_native_1h_warmup_then_1m_stream(june_1m, btc_1h):
    e = SignalEngine(ModulesConfig())
    start = 1748822400000  # 2025-06-02 00:00
    for c in btc_1h:
        if start - 1200 * HOUR <= c.open_ms < start:
            e.on_candle(c)
    decisions = [d for c in june_1m if c.open_ms >= start and (d := e.on_candle(c)) is not None]
    last = decisions[-1].outputs
    assert decisions[0].ts == start + HOUR
    assert last["garch"].status is Status.OK and last["atr_supertrend"].status is Status.OK
    assert last["multi_timeframe"].status is Status.OK
    assert set(last["multi_timeframe"].values["available"]) == {"15m", "1h", "4h", "1d"}
    assert list(last) == list(MODULE_ORDER)
    json.dumps(decisions[-1].to_dict())
    with pytest.raises(AttributeError):  # frozen
        last["garch"].status = Status.ERROR  # type: ignore[misc]


def test_bad_inputs_never_raise(btc_1h):
    e = SignalEngine(ModulesConfig(), base_interval="1h")
    for c in btc_1h[-200:-1]:
        e.on_candle(c)
    nan = dataclasses.replace(btc_1h[-1], close=math.nan)
    crossed = dataclasses.replace(btc_1h[-1], low=btc_1h[-1].high + 1)
    assert e.on_candle(nan) is None and e.on_candle(crossed) is None and e.rejected_candles == 2
    e.push_dvol(float("nan"), btc_1h[-1].open_ms)  # invalid live DVOL: recorded, not raised
    e.record_trade(1.0, 0.0, btc_1h[-1].open_ms)  # zero notional
    d = e.on_candle(btc_1h[-1])
    assert d is not None
    assert d.outputs["bitvol"].status is Status.ERROR and d.outputs["bitvol"].size_multiplier == 1.0
    assert "ValueError" in d.outputs["bitvol"].reason
    assert d.outputs["kelly"].status is Status.ERROR and d.outputs["kelly"].size_multiplier == 0.02
    # the error is reported once; the next decision is back to normal
    d2 = e.on_candle(dataclasses.replace(btc_1h[-1], open_ms=btc_1h[-1].open_ms + HOUR))
    assert d2.outputs["bitvol"].status is not Status.ERROR


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(-0.2, 0.2), st.floats(0, 0.05), st.floats(0, 1000),
                          st.integers(1, 3)), min_size=5, max_size=200))
def test_random_streams_never_raise_and_stay_finite(steps):
    e = SignalEngine(ModulesConfig(), base_interval="1h")
    price, t = 100.0, 0
    for ret, rng, vol, gap in steps:
        t += gap * HOUR
        new = max(price * (1 + ret), 1e-6)
        c = Candle(t, price, max(price, new) * (1 + rng), min(price, new) * (1 - rng), new, vol, HOUR)
        price = new
        d = e.on_candle(c)
        assert d is not None
        for o in d.outputs.values():
            assert o.status is Status.ERROR or o.finite()
            json.dumps(o.to_dict())


def test_engine_state_roundtrip():
    e = SignalEngine(ModulesConfig())
    e.update_equity(10_000.0, 0)
    e.update_equity(7_000.0, 60_000)
    for i in range(25):
        e.record_trade(10.0 if i % 2 else -5.0, 1000.0, i)
    state = json.loads(json.dumps(e.export_state()))
    e2 = SignalEngine(ModulesConfig())
    e2.import_state(state)
    assert e2.emergency.halted and e2.kelly.evaluate(0).size_multiplier == e.kelly.evaluate(0).size_multiplier


def test_modules_config_defaults_and_validation():
    cfg = EngineConfig().modules
    assert isinstance(cfg, ModulesConfig)
    assert cfg.atr_supertrend.atr_period == 14 and cfg.garch.window == 1000 and cfg.garch.ewma_lambda == 0.94
    assert cfg.combiner.weights == {"atr_supertrend": 0.7, "lxvx": 0.4, "multi_timeframe": 0.3}
    assert cfg.combiner.dominance == 1.2 and cfg.combiner.min_confidence == 0.6
    assert cfg.emergency.drawdown_levels == [0.05, 0.10, 0.15, 0.20, 0.25]
    bad = [
        {"atr_supertrend": {"sma_fast": 20, "sma_slow": 10}},
        {"combiner": {"weights": {"atr_supertrend": -1}}},
        {"combiner": {"weights": {"rsi": 1.0}}},
        {"emergency": {"drawdown_levels": [0.1, 0.05, 0.15, 0.2, 0.25]}},
        {"garch": {"ewma_lambda": 1.5}},
        {"bitvol": {"regime_bounds": [20, 60, 80]}},
        {"kelly": {"cap": 2}},
        {"decision_timeframe": "1m"},
        {"lxvx": {"nonsense": 1}},
    ]
    for data in bad:
        with pytest.raises(ValidationError):
            ModulesConfig.model_validate(data)


def test_three_consecutive_errors_raise_an_alert(btc_1h):
    e = SignalEngine(ModulesConfig(), base_interval="1h")
    for c in btc_1h[-10:-3]:
        e.on_candle(c)
    for c in btc_1h[-3:]:
        e.push_dvol(-1.0, c.open_ms)
        assert e.on_candle(c).outputs["bitvol"].status is Status.ERROR
    assert e.alerts() == ["bitvol"]


def test_gaps_degrade_lxvx_and_garch(btc_1h):
    e = SignalEngine(ModulesConfig(), base_interval="1h")
    hist = btc_1h[-1300:]
    for c in hist:
        d = e.on_candle(c)
    assert d.outputs["lxvx"].status is Status.OK and d.outputs["garch"].status is Status.OK
    late = dataclasses.replace(hist[-1], open_ms=hist[-1].open_ms + 5 * HOUR)  # 4 missing bars
    d = e.on_candle(late)
    assert d.outputs["lxvx"].status is Status.DEGRADED and d.outputs["garch"].status is Status.DEGRADED
    assert d.outputs["atr_supertrend"].status is Status.DEGRADED
    assert d.outputs["garch"].size_multiplier <= 1.0


def test_a_6pct_minute_vetoes_entries_but_not_exits():
    e = SignalEngine(ModulesConfig())
    minutes = 130 * 60
    out, price = [], 100.0
    for i in range(minutes):
        jump = 1.06 if i == minutes - 10 else 1.0
        new = price * jump + 0.01
        out.append(Candle(i * 60_000, price, max(price, new) + 0.005, min(price, new) - 0.005, new, 1.0))
        price = new
    decisions = [d for c in out if (d := e.on_candle(c)) is not None]
    before, last = decisions[-2], decisions[-1]
    assert before.intent.kind == "ENTER" and before.combined.side is Side.BUY
    em = last.outputs["emergency"]
    assert em.vote is None and em.veto.scope == "market:binance:BTCUSDT"
    buy = dataclasses.replace(before.combined)  # the same BUY decision one hour later
    blocked = decide(buy, last.outputs, 0.0, market=e.market)
    assert blocked.kind == "NONE" and "market:binance:BTCUSDT" in blocked.reason
    sell = dataclasses.replace(before.combined, side=Side.SELL)
    assert decide(sell, last.outputs, 0.01, market=e.market).kind == "EXIT"  # exits are never vetoed
    # 15 minutes after the flash candle closed, the market veto is gone
    em_later, _ = e.overrides(out[minutes - 10].close_ms + 15 * 60_000)
    assert not any(v.scope.startswith("market:") for v in em_later.vetoes)


def test_duplicates_and_out_of_order_candles_are_rejected(btc_1h):
    e = SignalEngine(ModulesConfig(), base_interval="1h")
    a, b = btc_1h[-2], btc_1h[-1]
    assert e.on_candle(a) is not None and e.on_candle(b) is not None
    assert e.on_candle(a) is None and e.on_candle(b) is None and e.rejected_candles == 2
    assert e.lxvx._bars == 2


def test_duplicate_and_out_of_order_1m_base_candles_are_rejected_before_the_hour(june_1m):
    """1m base candles have a path of their own: a replayed or late minute is counted and dropped, never
    folded into the hour (its volume would count twice) nor seen by the flash detector."""
    e = SignalEngine(ModulesConfig())
    hour = june_1m[40:100]
    assert hour[0].open_ms % INTERVAL_MS["1h"] == 0 and hour[-1].open_ms - hour[0].open_ms == 59 * 60_000
    decisions = []
    for i, c in enumerate(hour):
        decisions.append(e.on_candle(c))
        if i == 30:
            assert e.on_candle(c) is None and e.on_candle(hour[10]) is None  # duplicate, out of order
            # a flash-sized copy of an old minute must not arm the flash veto
            assert e.on_candle(dataclasses.replace(hour[5], high=c.close * 2, close=c.close * 2)) is None
    assert e.rejected_candles == 3
    assert decisions[:-1] == [None] * 59 and decisions[-1] is not None
    bar = decisions[-1].bar
    assert (bar.n_base, bar.complete, bar.volume) == (60, True, pytest.approx(sum(c.volume for c in hour)))
    assert bar.close == hour[-1].close and bar.high == max(c.high for c in hour)
    em, _ = e.overrides(hour[-1].close_ms)
    assert not any(v.scope.startswith("market:") for v in em.vetoes)


def test_flash_on_another_market_vetoes_that_market_only():
    e = SignalEngine(ModulesConfig())
    e.observe_candle("backpack:BTC_USDC", Candle(0, 100.0, 100.0, 100.0, 100.0, 1.0))
    e.observe_candle("backpack:BTC_USDC", Candle(60_000, 100.0, 107.0, 100.0, 106.0, 1.0))
    em, _ = e.overrides(120_000)
    assert [v.scope for v in em.vetoes] == ["market:backpack:BTC_USDC"]


def test_status_precedence():
    from ate.signals.base import worst

    assert worst(Status.OK, Status.DEGRADED) is Status.DEGRADED
    assert worst(Status.DEGRADED, Status.WARMUP) is Status.WARMUP
    assert worst(Status.WARMUP, Status.STALE, Status.OK) is Status.STALE
    assert worst(Status.STALE, Status.ERROR) is Status.ERROR
