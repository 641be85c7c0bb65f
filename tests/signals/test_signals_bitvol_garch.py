"""bitvol (§4.1) and garch (§4.2) on the shipped DVOL and 1h BTCUSDT files."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from arch import arch_model
from signals_helpers import DATA, bars

from ate.config.modules import BitvolConfig, GarchConfig
from ate.data.loaders import DvolPoint, load_dvol
from ate.signals.base import Status
from ate.signals.bitvol import DAY_MS, Bitvol
from ate.signals.garch import Garch, fit_arch, fit_garch

HOUR = 3_600_000


def day_ms(s: str) -> int:
    return int(dt.datetime.fromisoformat(s).replace(tzinfo=dt.UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def dvol() -> list[DvolPoint]:
    return load_dvol(DATA / "deribit_BTC_DVOL_1d.csv")


@pytest.mark.parametrize("day, value, pct, n, regime, mult", [
    ("2022-06-18", 115.03, 99.57, 349, "extreme", 0.0),
    ("2024-08-05", 63.08, 80.14, 365, "high", 0.5),
    ("2023-03-13", 62.24, 36.51, 341, "normal", 1.0),
    # §4.1 prints 2.06; the rule gives 100·(7 + ½·1)/365 = 2.0548 (7 lower values, one tie: itself).
    ("2025-06-15", 42.32, 2.0548, 365, "low", 1.0),
])
def test_bitvol_acceptance_on_shipped_dvol(dvol, day, value, pct, n, regime, mult):
    b = Bitvol(BitvolConfig(), dvol)
    out = b.evaluate(day_ms(day) + DAY_MS + 5 * HOUR)  # evaluated the next day
    assert out.status is Status.OK and out.values["source"] == "dvol"
    assert out.values["value"] == value and out.values["n"] == n
    assert out.values["percentile"] == pytest.approx(pct, abs=5e-3)
    assert out.regime == regime and out.size_multiplier == mult
    assert (out.veto is not None and out.veto.scope == "directional") == (regime == "extreme")


def test_bitvol_no_look_ahead(dvol):
    now = day_ms("2024-08-06") + 5 * HOUR
    base = Bitvol(BitvolConfig(), dvol).evaluate(now)
    altered = [DvolPoint(p.day_open_ms, p.close * 3 if p.day_open_ms >= day_ms("2024-08-06") else p.close)
               for p in dvol]
    out = Bitvol(BitvolConfig(), altered).evaluate(now)
    assert out.values == base.values and out.size_multiplier == base.size_multiplier
    # the current day's own close (known only at its end) is not used either
    assert base.values["day"] == day_ms("2024-08-05")


def test_bitvol_proxy_value_and_degraded_without_dvol():
    closes = [100.0]
    for i in range(720):
        closes.append(closes[-1] * math.exp(0.01 if i % 2 == 0 else -0.01))
    b = Bitvol(BitvolConfig())
    for c in bars(closes, [x * 1.001 for x in closes], [x * 0.999 for x in closes]):
        b.update(c)
    assert b.rv.value() == pytest.approx(93.660, abs=5e-4)
    out = b.evaluate(721 * HOUR)
    assert out.values["source"] == "proxy" and out.values["value"] == pytest.approx(93.660, abs=5e-4)
    assert out.status is Status.WARMUP and out.size_multiplier == 0.75  # < 180 daily proxy samples
    assert out.regime == "unknown"


def test_bitvol_proxy_after_a_year_is_degraded_with_regime(btc_1h):
    b = Bitvol(BitvolConfig())
    for c in btc_1h[-9500:]:
        b.update(c)
    out = b.evaluate(btc_1h[-1].close_ms)
    assert out.status is Status.DEGRADED and out.values["source"] == "proxy"
    assert out.values["n"] == 365 and out.regime in ("low", "normal", "elevated", "high", "extreme")
    assert out.values["vrp"] is None


def test_bitvol_live_push_and_fallback_when_old(dvol):
    b = Bitvol(BitvolConfig(), dvol)
    t = day_ms("2025-06-16") + 10 * HOUR
    b.push_dvol(42.0, t)
    out = b.evaluate(t + HOUR, garch_sigma=30.0)
    assert out.status is Status.OK and out.values["value"] == 42.0 and out.values["vrp"] == pytest.approx(12.0)
    stale = b.evaluate(t + 2 * HOUR + 1)  # > 2 h old, no proxy history → WARMUP fallback, not DVOL
    assert stale.values["source"] == "none" and stale.status is Status.WARMUP
    with pytest.raises(ValueError):
        b.push_dvol(float("nan"), t)


def test_bitvol_extreme_percentile_from_window_is_within_3_days(dvol):
    # the history has gaps; a value up to 3 days old is still used
    b = Bitvol(BitvolConfig(), [p for p in dvol if p.day_open_ms < day_ms("2025-06-14")])
    assert b.evaluate(day_ms("2025-06-16") + HOUR).values["day"] == day_ms("2025-06-13")
    assert b.evaluate(day_ms("2025-06-17") + HOUR).values["source"] == "none"


# ---- garch ----------------------------------------------------------------------------------------

def _window_returns(btc_1h, end_ms: int, n: int = 1000) -> tuple[list, np.ndarray]:
    """`r = 100·ln(C_t/C_{t−1})` exactly as §4.2 writes it. (The MLE is only as precise as SLSQP's stopping
    rule: returns computed as `diff(log C)` differ in the last ulp and move α by ~1e-4 relative.)"""
    hist = [c for c in btc_1h if c.open_ms < end_ms][-(n + 1):]
    return hist, np.array([100 * math.log(b.close / a.close) for a, b in zip(hist, hist[1:], strict=False)])


def _run(g: Garch, candles) -> None:
    for c in candles:
        g.update(c)


def test_garch_reference_values(btc_1h):
    end = day_ms("2025-07-01")
    hist, _ = _window_returns(btc_1h, end)
    assert hist[-1].open_ms == end - HOUR
    g = Garch(GarchConfig())
    _run(g, hist)
    out = g.evaluate(end)
    v = out.values
    assert out.status is Status.OK and v["model"] == "garch"
    assert v["mu"] == pytest.approx(-0.001586, abs=5e-7)
    assert v["omega"] == pytest.approx(0.007097, abs=5e-7)
    assert v["alpha"] == pytest.approx(0.09662, abs=5e-6)
    assert v["beta"] == pytest.approx(0.85594, abs=5e-6)
    assert v["sigma_1step_ann"] == pytest.approx(30.68, abs=5e-3)
    assert v["sigma_longrun_ann"] == pytest.approx(36.20, abs=5e-3)
    assert v["rv30"] == pytest.approx(32.46, abs=5e-3)
    assert v["spike"] is False and out.size_multiplier == pytest.approx(1.630, abs=5e-4)


@pytest.mark.parametrize("end", ["2025-07-01", "2019-06-01", "2022-06-01", "2024-03-01", "2026-03-01"])
def test_garch_matches_arch_fitted_directly(btc_1h, end):
    hist, r = _window_returns(btc_1h, day_ms(end))
    res = arch_model(r, mean="Constant", vol="GARCH", p=1, q=1, dist="normal").fit(disp="off")
    g = Garch(GarchConfig())
    _run(g, hist)
    v = g.evaluate(day_ms(end)).values
    assert v["model"] == "garch"
    for ours, theirs in (("mu", "mu"), ("omega", "omega"), ("alpha", "alpha[1]"), ("beta", "beta[1]")):
        assert v[ours] == pytest.approx(res.params[theirs], rel=1e-6)
    one_step = math.sqrt(res.forecast(horizon=1, reindex=False).variance.values[-1, 0]) * math.sqrt(8760)
    assert v["sigma_1step_ann"] == pytest.approx(one_step, rel=1e-6)


@pytest.mark.parametrize("end", ["2025-07-01", "2019-06-01", "2022-06-01", "2024-03-01", "2026-03-01", "2023-01-15",
                                 "2020-03-20", "2021-05-20"])
def test_fast_fit_is_arch_fit_bit_for_bit(btc_1h, end):
    """The engine's fitter (`fit_garch`: arch's set-up and likelihood, SLSQP called directly) returns exactly
    what `arch_model(...).fit()` returns, parameters, log-likelihood, σ² and convergence flag alike — also
    where the fit hits α+β = 1 (2023-01-15, 2020-03-20) — so backtests are byte-identical either way."""
    _, r = _window_returns(btc_1h, day_ms(end))
    assert fit_garch(r) == fit_arch(r)


def test_garch_recursion_between_fits_equals_arch_filter(btc_1h):
    end = day_ms("2025-07-01")
    hist = [c for c in btc_1h if c.open_ms < end + 20 * HOUR][-(1001 + 20):]
    g = Garch(GarchConfig())
    _run(g, hist[:1001])
    f = g._fit
    assert f is not None
    _run(g, hist[1001:])  # 20 more bars: < 24 h, no refit
    assert g._last_fit_ms == hist[1000].close_ms
    r = np.array([100 * math.log(b.close / a.close) for a, b in zip(hist, hist[1:], strict=False)])
    fixed = arch_model(r, mean="Constant", vol="GARCH", p=1, q=1, dist="normal").fix(
        [f.mu, f.omega, f.alpha, f.beta])
    s2_last = fixed.conditional_volatility[-1] ** 2
    expected = f.omega + f.alpha * (r[-1] - f.mu) ** 2 + f.beta * s2_last
    assert g._sigma2_next == pytest.approx(expected, rel=1e-9)


def test_garch_refits_every_24h_not_per_bar(btc_1h):
    calls = []

    def counting(r):
        calls.append(len(r))
        return fit_garch(r)

    g = Garch(GarchConfig(), fitter=counting)
    _run(g, btc_1h[-1001 - 72:])
    assert calls == [1000] * 4  # at start, then after 24, 48, 72 hours


@pytest.mark.parametrize("end", ["2023-01-15", "2020-03-20"])
def test_garch_persistence_at_one_falls_back_like_arch_says(btc_1h, end):
    """~1 window in 5 of BTC 1h fits α+β = 1: EWMA, DEGRADED, multiplier ≤ 1, retried at the next refit."""
    hist, r = _window_returns(btc_1h, day_ms(end))
    res = arch_model(r, mean="Constant", vol="GARCH", p=1, q=1, dist="normal").fit(disp="off", show_warning=False)
    assert res.params["alpha[1]"] + res.params["beta[1]"] >= 0.9999
    g = Garch(GarchConfig())
    _run(g, hist)
    out = g.evaluate(day_ms(end))
    assert out.status is Status.DEGRADED and out.values["model"] == "ewma" and "persistence" in out.reason
    assert out.size_multiplier <= 1.0


def test_garch_forced_failure_falls_back_to_ewma(btc_1h):
    def failing(r):
        raise RuntimeError("optimizer exploded")

    hist, r = _window_returns(btc_1h, day_ms("2025-07-01"))
    g = Garch(GarchConfig(), fitter=failing)
    _run(g, hist)
    out = g.evaluate(day_ms("2025-07-01"))
    assert out.status is Status.DEGRADED and out.values["model"] == "ewma"
    assert "optimizer exploded" in out.reason and out.size_multiplier <= 1.0
    s2 = np.mean(r[:30] ** 2)
    for x in r:
        s2 = 0.94 * s2 + 0.06 * x * x
    assert out.values["sigma_1step_ann"] == pytest.approx(math.sqrt(s2) * math.sqrt(8760), rel=1e-12)


def test_garch_constant_price_is_degraded():
    g = Garch(GarchConfig())
    _run(g, bars([100.0] * 1001))
    out = g.evaluate(1001 * HOUR)
    assert out.status is Status.DEGRADED and out.values["model"] == "ewma" and out.size_multiplier <= 1.0


def test_garch_warmup_shows_ewma_after_100_returns():
    g = Garch(GarchConfig())
    closes = [100.0 * math.exp(0.001 * ((-1) ** i) * (1 + i % 7)) for i in range(500)]
    _run(g, bars(closes))
    out = g.evaluate(500 * HOUR)
    assert out.status is Status.WARMUP and out.size_multiplier == 1.0 and out.values["ewma_sigma_ann"] > 0
