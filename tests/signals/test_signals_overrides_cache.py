"""The overrides keep their last output while it provably holds: over random event streams, emergency and gamma
answer exactly what a twin that evaluates everything on every call answers (same outputs, `ts` included, same
state), and between changes they hand back the same object instead of building a new one.

The streams mix repeated inputs (the case the cache serves) with everything that must end it: equity moves,
day changes, flows, flash candles, market updates in and out of order, venue errors, operator resume, restarts
from the stored state, books changing coins, going in flight, snapshots ageing out, hedges, and the clock
stepping back.
"""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ate.config.modules import EmergencyConfig, GammaConfig
from ate.data.candles import Candle
from ate.signals.base import SafeModule
from ate.signals.emergency import DAY_MS, Emergency
from ate.signals.gamma import Gamma, HedgeBook

MIN = 60_000
T0 = 1_750_000_000_000 - 1_750_000_000_000 % DAY_MS + 23 * 3_600_000  # 23:00 UTC: streams cross midnight
MARKETS = ("binance:BTCUSDT", "backpack:BTC_USDC")


class FullEmergency(Emergency):
    """Evaluates and updates in full on every call: the reference the cached module must equal."""

    __slots__ = ()
    evaluate = SafeModule.evaluate

    def update_equity(self, equity, now_ms, gross_exposure=None, flow=0.0):
        self._equity_args = None
        super().update_equity(equity, now_ms, gross_exposure, flow)

    def _current_values(self):
        return self._ladder_values()


class FullGamma(Gamma):
    __slots__ = ()
    evaluate = SafeModule.evaluate


class CountingEmergency(Emergency):
    """The module under test, counting its full evaluations (to show the streams do exercise the kept output)."""

    evaluations = 0

    def _evaluate(self, now_ms):
        self.evaluations += 1
        return super()._evaluate(now_ms)


class CountingGamma(Gamma):
    evaluations = 0

    def _evaluate(self, now_ms):
        self.evaluations += 1
        return super()._evaluate(now_ms)


def _differ(a, b) -> str:
    return f"cached module {a.to_dict()} != full evaluation {b.to_dict()}"


def _step(rng: random.Random) -> int:
    """A clock step: mostly a minute, sometimes none or a few seconds, sometimes long (vetoes lift, flashes and
    requests expire, snapshots age out, 4 h pass, days turn), sometimes back."""
    u = rng.random()
    if u < 0.55:
        return MIN
    if u < 0.65:
        return 0
    if u < 0.80:
        return rng.randrange(1, 70_000)
    if u < 0.92:
        return rng.randrange(5 * MIN, 5 * 3_600_000)
    return -rng.randrange(1, 3 * MIN)


# short clocks, so that vetoes lift and flashes and requests expire many times within a stream
EMERGENCY = EmergencyConfig(veto_lift_s=150.0, flash_veto_s=240.0, venue_window_s=120.0)
EQUITIES = (10_000.0, 9_900.0, 9_700.0, 9_400.0, 10_200.0)  # levels 0 to 2; rarely deeper, and a halt
EXPOSURES = (None, 5_000.0, 3_700.0, 0.0)


def _emergency_stream(rng: random.Random, cached: CountingEmergency, full: Emergency, n: int) -> int:
    t = T0
    closes = dict.fromkeys(MARKETS, 100.0)
    equity, gross, hits = 10_000.0, None, 0
    for _ in range(n):
        t += _step(rng)
        if rng.random() < 0.7:  # books of the markets in use (late ones now and then)
            for market in MARKETS:
                at = t - (0 if rng.random() < 0.95 else rng.randrange(90_000))
                for e in (cached, full):
                    e.on_market_update(market, at)
        u = rng.random()
        if u < 0.4:
            before = cached.evaluations
            a, b = cached.evaluate(t), full.evaluate(t)
            assert a.to_dict() == b.to_dict(), _differ(a, b)
            hits += cached.evaluations == before
            continue
        if u < 0.57:
            if rng.random() < 0.4:
                u = rng.random()
                equity = rng.choice(EQUITIES) if u < 0.9 else rng.choice((8_600.0, 8_100.0)) if u < 0.97 else 7_400.0
            if rng.random() < 0.3:
                gross = rng.choice(EXPOSURES)
            flow = 0.0 if rng.random() < 0.85 else rng.choice((250.0, -250.0))
            for e in (cached, full):
                e.update_equity(equity, t, gross, flow)
        elif u < 0.72:
            market = rng.choice(MARKETS)
            closes[market] *= 1.0 + (rng.choice((0.06, -0.06)) if rng.random() < 0.2 else rng.uniform(-0.01, 0.01))
            c = Candle(t - t % MIN, closes[market], closes[market], closes[market], closes[market], 1.0)
            for e in (cached, full):
                e.on_minute(c, market)
        elif u < 0.93:
            venue, n_req, error_rate = rng.choice(("binance", "backpack")), rng.randrange(30), rng.choice((0, .1, .5))
            oks = [rng.random() >= error_rate for _ in range(n_req)]
            for e in (cached, full):
                for i, ok in enumerate(oks):
                    e.record_request(venue, ok, t - 1_000 * i)
        elif u < 0.96:
            for e in (cached, full):
                e.resume(equity, t)
        else:
            for e in (cached, full):  # a restart from the stored state
                e.import_state(json.loads(json.dumps(e.export_state())))
        assert cached.export_state() == full.export_state()
        assert (cached.level, cached.acted_level, cached.last_ts) == (full.level, full.acted_level, full.last_ts)
    return hits


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32))
def test_emergency_cached_equals_full_evaluation(seed):
    rng = random.Random(seed)
    hits = _emergency_stream(rng, CountingEmergency(EMERGENCY), FullEmergency(EMERGENCY), 600)
    assert hits > 0  # the stream does exercise the kept output


COINS = (0.0, 1.0, 2.0)
PERPS = (0.0, -1.0, -0.997, -0.992, -0.97, -0.5, -0.492, -1.984)  # inside, soft band, outside, h = 0.5 cases
# short time and move rules, so that books in the soft band meet them within a stream
GAMMA = GammaConfig(rebalance_hours=0.5, move_pct=0.01)


def _gamma_stream(rng: random.Random, cached: CountingGamma, full: Gamma, n: int) -> int:
    t = T0
    mark, hits = 60_000.0, 0
    coins: dict[str, tuple[float, float]] = {}
    for i in range(n):
        t += _step(rng)
        u = rng.random()
        if i == 0 or u < 0.03:
            book_id = rng.choice(("carry", "hedged"))
            coins.setdefault(book_id, (1.0, -1.0))
            hedge_ratio, step, min_qty = rng.choice((1.0, 0.5)), rng.choice((0.001, 0.01)), rng.choice((0.0, 0.02))
            min_notional = rng.choice((0.0, 50.0, 480.0))
            for g in (cached, full):
                g.register_book(book_id, HedgeBook("BTC", "binance", f"{book_id}-PERP", hedge_ratio, step,
                                                   min_qty=min_qty, min_notional=min_notional))
        elif u < 0.45:
            before = cached.evaluations
            a, b = cached.evaluate(t), full.evaluate(t)
            assert a.to_dict() == b.to_dict(), _differ(a, b)
            hits += cached.evaluations == before
        elif u < 0.93:
            book_id = rng.choice(sorted(coins))
            if rng.random() < 0.3:
                coins[book_id] = (rng.choice(COINS), rng.choice(PERPS))
            mark *= 1.0 + (rng.uniform(-0.03, 0.03) if rng.random() < 0.1 else rng.uniform(-0.003, 0.003))
            at = t - (0 if rng.random() < 0.85 else rng.choice((5_000, 70_000)))
            in_flight = rng.random() < 0.1
            for g in (cached, full):
                g.update_book(book_id, *coins[book_id], mark, at, in_flight)
        else:
            book_id = rng.choice(sorted(coins))
            for g in (cached, full):
                g.on_hedge(book_id, t, mark)
    return hits


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32))
def test_gamma_cached_equals_full_evaluation(seed):
    rng = random.Random(seed)
    assert _gamma_stream(rng, CountingGamma(GAMMA), FullGamma(GAMMA), 600) > 0


def test_unchanged_inputs_give_back_the_same_output_object():
    """Every 1m close with a flat book: the same equity, the books refreshed with the same coins, no new object
    unless the newest input's time moved (then only `ts` differs)."""
    e = Emergency(EmergencyConfig())
    g = Gamma(GammaConfig())
    g.register_book("carry", HedgeBook("BTC", "binance", "BTCUSDT-PERP", 1.0, 0.001))
    e.on_market_update(MARKETS[0], T0)
    e.update_equity(10_000.0, T0, 0.0)
    g.update_book("carry", 0.0, 0.0, 60_000.0, T0)
    first_e, first_g = e.evaluate(T0), g.evaluate(T0)
    assert e.evaluate(T0 + 1_000) is first_e and g.evaluate(T0 + 1_000) is first_g
    e.update_equity(10_000.0, T0 + MIN, 0.0)
    e.on_market_update(MARKETS[0], T0 + MIN)
    g.update_book("carry", 0.0, 0.0, 61_000.0, T0 + MIN)  # the mark moved: the verdict inside the band does not
    later_e, later_g = e.evaluate(T0 + MIN), g.evaluate(T0 + MIN)
    assert later_e.ts == later_g.ts == T0 + MIN
    assert later_e.values is first_e.values and later_g.values is first_g.values
    assert {**later_e.to_dict(), "ts": T0} == first_e.to_dict() and {**later_g.to_dict(), "ts": T0} == first_g.to_dict()
    # an input that matters ends it: the equity falls 10 % (level 2: veto and REDUCE)
    e.update_equity(9_000.0, T0 + 2 * MIN, 0.0)
    assert e.evaluate(T0 + 2 * MIN).veto.scope == "all"


def test_a_day_of_bars_with_moving_marks_evaluates_once():
    """The backtest's common case for hours on end: books every minute, equity moving by cents (dust valued at
    the mark), the hedged book flat. Nothing the overrides say can change, so neither evaluates again; the
    outputs still carry each minute's time and equity."""
    e, g = CountingEmergency(EmergencyConfig()), CountingGamma(GammaConfig())
    g.register_book("carry", HedgeBook("BTC", "binance", "BTCUSDT-PERP", 1.0, 0.001))
    for i in range(1440):
        t = T0 + i * MIN
        e.on_market_update(MARKETS[0], t)
        e.update_equity(10_000.0 + 0.01 * (i % 7), t, 0.0)
        g.update_book("carry", 0.0, 0.0, 60_000.0 + i, t)
        out_e, out_g = e.evaluate(t), g.evaluate(t)
        assert out_e.ts == out_g.ts == t and out_e.values["equity"] == 10_000.0 + 0.01 * (i % 7)
        assert out_e.vetoes == out_g.vetoes == () and out_g.values["carry"]["reason"] == "inside band"
    assert (e.evaluations, g.evaluations) == (1, 1)
