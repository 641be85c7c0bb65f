"""garch scaler (§4.2): GARCH(1,1) by maximum likelihood with `arch`, refitted on a schedule, EWMA fallback."""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ate.config.modules import GarchConfig
from ate.data.candles import Candle
from ate.signals.base import GapTracker, ModuleOutput, SafeModule, Status, worst
from ate.signals.rolling import RealizedVol

ANNUAL = math.sqrt(8760.0)


@dataclass(frozen=True, slots=True)
class GarchFit:
    mu: float
    omega: float
    alpha: float
    beta: float
    loglik: float
    sigma2_last: float  # conditional variance of the window's last return
    converged: bool


def fit_arch(returns: np.ndarray) -> GarchFit:
    """Normal-MLE GARCH(1,1) with constant mean, exactly as `arch_model(...).fit(disp="off")`."""
    from arch import arch_model  # imported lazily: heavy, and only needed at refits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, dist="normal")
        res = model.fit(disp="off", show_warning=False)
    p = res.params
    cv = res.conditional_volatility
    return GarchFit(float(p["mu"]), float(p["omega"]), float(p["alpha[1]"]), float(p["beta[1]"]),
                    float(res.loglikelihood), float(cv[-1]) ** 2, res.convergence_flag == 0)


_FD_STEP = float(np.sqrt(np.finfo(float).eps))  # SLSQP's default finite-difference step
_LOG_2PI = np.log(2 * np.pi)


class _Steps:
    """The points at which SciPy's SLSQP estimates gradients (`approx_derivative(..., '2-point', abs_step=eps,
    bounds=...)`), with the same floating-point operations minus its generic machinery, so SLSQP takes the
    same steps and the fit is bit for bit arch's. They depend on x and the bounds only, so the objective and
    every constraint share them (SLSQP asks for all of their gradients at the same x)."""

    __slots__ = ("lb", "ub", "_key", "x0", "points", "dens")

    def __init__(self, lb: np.ndarray, ub: np.ndarray) -> None:
        self.lb, self.ub = lb.tolist(), ub.tolist()
        self._key = b""
        self.x0 = lb
        self.points: list[np.ndarray] = []
        self.dens: list[float] = []

    def at(self, x: np.ndarray) -> _Steps:
        """SciPy's array expressions element by element on floats (a handful of parameters: numpy's per-call
        cost dominates); IEEE gives the same bits either way."""
        key = x.tobytes()
        if key == self._key:
            return self
        x0s = [min(max(v, lo), hi) for v, lo, hi in zip(x.tolist(), self.lb, self.ub, strict=True)]  # np.clip
        x0 = np.array(x0s)
        points, dens = [], []
        for i, (xi0, lo, hi) in enumerate(zip(x0s, self.lb, self.ub, strict=True)):
            h = _FD_STEP
            if (xi0 + h) - xi0 == 0:
                h = np.finfo(float).eps ** 0.5 * (1.0 if xi0 >= 0 else -1.0) * max(1.0, abs(xi0))
            # the one-sided scheme's step flips (or shrinks) where a bound is in the way
            lower, upper = xi0 - lo, hi - xi0
            x1 = xi0 + h
            if abs(h) <= max(lower, upper):
                if x1 < lo or x1 > hi:
                    h = -h
            elif upper >= lower:
                h = upper
            else:
                h = -lower
            point = x0.copy()
            point[i] = xi0 + h
            points.append(point)
            dens.append((xi0 + h) - xi0)
        self._key, self.x0, self.points, self.dens = key, x0, points, dens
        return self

    def gradient(self, fun: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
        s = self.at(x)
        f0 = fun(s.x0)
        return np.array([(fun(xi) - f0) / den for xi, den in zip(s.points, s.dens, strict=True)])  # row i: ∂/∂x_i


_CONSTRAINTS = (np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, -1.0, -1.0]]),
                np.array([0.0, 0.0, 0.0, -1.0]))  # arch's rows a·x − b ≥ 0: ω ≥ 0, α ≥ 0, β ≥ 0, 1 − α − β ≥ 0


def _constraint_values(x: np.ndarray, *_: Any) -> np.ndarray:
    """arch's `a·x − b` row by row, as `np.dot` gives it: with coefficients 0 and ±1 and at most two non-zero
    per row, every order of summation gives the same bits, so one vector replaces four scalar constraints."""
    return np.array([x[1], x[2], x[3], (-x[2] - x[3]) + 1.0])


def _check_constraints(a: np.ndarray, b: np.ndarray) -> None:
    if not (np.array_equal(a, _CONSTRAINTS[0]) and np.array_equal(b, _CONSTRAINTS[1])):
        raise RuntimeError("arch's GARCH(1,1) constraints are not the ones fit_garch reproduces")


class _NegLogLik:
    """arch's `_loglikelihood` for Constant mean + GARCH(1,1) + normal: the same IEEE operations on the same
    values, so the same bits, without its per-call parsing and allocations; its gradient is SLSQP's forward
    difference. Rewritten only where IEEE guarantees the same result: `|r|**2 == r**2` (computed once for the
    recursion and the likelihood), `a + b == b + a`, `Σ(−½t) == −½Σt`; the recursion is arch's own."""

    __slots__ = ("y", "backcast", "var_bounds", "steps", "_recursion", "_resids", "_sq", "_sigma2", "_t", "_u",
                 "_last", "_sq_mu")

    def __init__(self, y: np.ndarray, backcast: float, var_bounds: np.ndarray, steps: _Steps) -> None:
        from arch.univariate.volatility import rec

        self.y, self.backcast, self.var_bounds, self.steps = y, backcast, var_bounds, steps
        self._recursion = rec.garch_recursion
        self._resids, self._sq, self._sigma2, self._t, self._u = (np.zeros(y.shape[0]) for _ in range(5))
        self._last: tuple[bytes, float] = (b"", 0.0)
        self._sq_mu = math.nan  # μ of the residuals in `_resids` / `_sq` (NaN: other residuals are there)

    def loglik(self, mu: float, vp: np.ndarray, resids: np.ndarray, sigma2: np.ndarray) -> float:
        """`Normal.loglikelihood` of `GARCH.compute_variance` (power 2, p = q = 1, o = 0: the signs of the
        residuals are not read; its final `sigma2 **= 1.0` changes no bit) on `resids = y − μ`."""
        sq = self._sq
        if resids is not self._resids or mu != self._sq_mu:  # gradient points that move ω, α, β share them
            np.subtract(self.y, mu, out=resids)
            np.power(resids, 2.0, out=sq)
            self._sq_mu = mu if resids is self._resids else math.nan
        self._recursion(vp, sq, sq, sigma2, 1, 0, 1, resids.shape[0], self.backcast, self.var_bounds)
        t = np.log(sigma2, out=self._t)
        t += _LOG_2PI
        t += np.divide(sq, sigma2, out=self._u)
        return -0.5 * t.sum()  # = sum(−0.5·t) exactly: scaling by a power of two commutes with rounding

    def __call__(self, x: np.ndarray, *_: Any) -> float:
        # SLSQP asks for the gradient at the point it just evaluated: its base value is that one (SciPy
        # reuses it the same way)
        key = x.tobytes()
        if key == self._last[0]:
            return self._last[1]
        value = -float(self.loglik(x[0], x[1:4], self._resids, self._sigma2))
        self._last = (key, value)
        return value

    def gradient(self, x: np.ndarray, *_: Any) -> np.ndarray:
        return self.steps.gradient(self, x)


def _starting_values(nll: _NegLogLik, mu: float, resids: np.ndarray) -> np.ndarray:
    """`GARCH.starting_values` for p = q = 1, o = 0. arch scans 4 α × 4 γ × 4 (α+β) candidates, but without
    an asymmetric term γ changes nothing, so the 16 distinct ones are scanned in the same order: the first
    best of them is the first best of arch's 64."""
    target = np.mean(np.absolute(resids) ** 2.0)
    scale = np.mean(resids**2) / (target ** (2.0 / 2.0))
    target *= scale ** (2.0 / 2)
    svs: list[np.ndarray] = []
    llfs = np.zeros(16)
    sigma2, work = np.zeros(resids.shape[0], dtype=float), np.zeros(resids.shape[0], dtype=float)
    for alpha in (0.01, 0.05, 0.1, 0.2):
        for agb in (0.5, 0.7, 0.9, 0.98):
            sv = (1.0 - agb) * target * np.ones(3, dtype=float)
            sv[1] = alpha / 1
            sv[2] = (agb - alpha) / 1
            sigma2[:] = 0.0
            llfs[len(svs)] = float(nll.loglik(mu, sv, work, sigma2))
            svs.append(sv)
    return svs[int(np.argmax(llfs))]  # like arch's: the first best, a NaN first of all


def _slsqp(nll: _NegLogLik, cons: Callable[[np.ndarray], np.ndarray], cons_jac: Callable[[np.ndarray], np.ndarray],
           x0: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> tuple[np.ndarray, float, int]:
    """`minimize(..., method="SLSQP", bounds, inequality constraints)` with its defaults (ftol 1e-6, 100
    iterations): the loop of SciPy's `_minimize_slsqp` around the same compiled solver, without the
    `ScalarFunction` bookkeeping that costs more than the likelihood itself. Returns (x, f(x), exit mode).
    It drives SciPy's private solver interface, so pyproject bounds SciPy to the releases whose loop this
    is; tests/signals pin the fit bit for bit against `arch_model(...).fit()`, which goes through SciPy."""
    from scipy.optimize._slsqplib import slsqp

    n = x0.size
    x = np.clip(x0, lb, ub)
    fx, g = nll(x), nll.gradient(x)
    d = cons(x)
    m = d.size
    state = {"acc": 1e-6, "alpha": 0.0, "f0": 0.0, "gs": 0.0, "h1": 0.0, "h2": 0.0, "h3": 0.0, "h4": 0.0,
             "t": 0.0, "t0": 0.0, "tol": 10.0 * 1e-6, "exact": 0, "inconsistent": 0, "reset": 0, "iter": 0,
             "itermax": 100, "line": 0, "m": m, "meq": 0, "mode": 0, "n": n}
    indices = np.zeros(max(m + 2 * n + 2, 1), dtype=np.int32)
    buffer = np.zeros(n * (n + 1) // 2 + 3 * m * n + 9 * m + 8 * n * n + 35 * n + 28, dtype=np.float64)
    mult = np.zeros(max(1, m + 2 * n + 2), dtype=np.float64)
    c = np.zeros((max(1, m), n), dtype=np.float64, order="F")
    c[:] = cons_jac(x)
    xl = np.where(np.isfinite(lb), lb, np.nan)  # the solver marks a missing bound with NaN
    xu = np.where(np.isfinite(ub), ub, np.nan)
    while True:
        slsqp(state, fx, g, c, d, x, mult, xl, xu, buffer, indices)
        mode = state["mode"]
        if mode == 1:  # objective and constraints at the new x
            fx = nll(x)
            d[:] = cons(x)
        elif mode == -1:  # their gradients
            g = nll.gradient(x)
            c[:] = cons_jac(x)
        else:
            return x, fx, mode


def fit_garch(returns: np.ndarray) -> GarchFit:
    """`fit_arch` without its overhead, same result bit for bit (tests/signals pin it against `fit_arch`).

    `arch`'s own set-up (sample, scale check, backcast, bounds, constraints) is used unchanged; its starting
    values, log-likelihood and the SLSQP call are reproduced operation for operation without the per-call
    machinery (SciPy otherwise spends most of a fit estimating gradients through generic code), and no
    result object is built (a deep copy of the model and pandas series per fit)."""
    from arch import arch_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, dist="normal")
        v, d = model.volatility, model.distribution
        model._adjust_sample(None, None)
        mean_sv = model.starting_values()
        resids = model.resids(mean_sv)  # y − μ₀
        # (arch's scale check is skipped: with rescale=None it only warns, and warnings are silenced here)
        backcast = v.backcast(resids)
        var_bounds = v.variance_bounds(resids)
        parts = (model.constraints(), v.constraints(), d.constraints())
        widths = (model.num_params, v.num_params, d.num_params)
        a = np.zeros((sum(p[0].shape[0] for p in parts), sum(widths)))
        b = np.zeros(a.shape[0])
        row = col = 0
        for (pa, pb), w in zip(parts, widths, strict=True):
            a[row:row + pa.shape[0], col:col + w] = pa
            b[row:row + pa.shape[0]] = pb
            row, col = row + pa.shape[0], col + w
        # arch's normal has no parameters: its bounds (which read the standardised residuals) are empty
        bounds = [*model.bounds(), *v.bounds(resids)]
        lb = np.array([-np.inf if lo is None else lo for lo, _ in bounds], dtype=float)
        ub = np.array([np.inf if hi is None else hi for _, hi in bounds], dtype=float)
        steps = _Steps(lb, ub)
        nll = _NegLogLik(np.asarray(model._fit_y, dtype=float), backcast, var_bounds, steps)
        sv = np.asarray(np.hstack([mean_sv, _starting_values(nll, mean_sv[0], resids)]), dtype=float).ravel()
        _check_constraints(a, b)
        p, fx, mode = _slsqp(nll, _constraint_values, lambda x: steps.gradient(_constraint_values, x).T, sv, lb, ub)
        var = np.zeros(returns.shape[0], dtype=float)
        nll.loglik(p[0], p[1:4], np.zeros(returns.shape[0], dtype=float), var)
    return GarchFit(float(p[0]), float(p[1]), float(p[2]), float(p[3]), float(-1.0 * fx),
                    float(np.sqrt(var)[-1]) ** 2, mode == 0)


class Garch(SafeModule):
    name = "garch"
    __slots__ = ("cfg", "fitter", "stale_after_ms", "_returns", "_prev_close", "_fit", "_sigma2_next",
                 "_model", "_last_fit_ms", "_fit_error", "_ewma", "_n_returns", "_seed_sum", "rv", "_own_rv", "_gaps")

    def __init__(self, cfg: GarchConfig, fitter: Callable[[np.ndarray], GarchFit] | None = None,
                 stale_grace_ms: int = 120_000, rv: RealizedVol | None = None, max_gap_bars: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        self.fitter = fitter or fit_garch
        self.stale_after_ms = 3_600_000 + stale_grace_ms
        self._returns: deque[float] = deque(maxlen=cfg.window)
        self._prev_close: float | None = None
        self._fit: GarchFit | None = None
        self._sigma2_next = math.nan  # σ²_{T+1} of the model in force
        self._model = "none"
        self._last_fit_ms: int | None = None
        self._fit_error = ""
        self._ewma = math.nan  # running EWMA σ² over the whole history (shown during warm-up)
        self._n_returns = 0
        self._seed_sum = 0.0
        self._gaps = GapTracker(3_600_000, max_gap_bars, cfg.window)
        # rv30 (§4.1 proxy); the engine passes bitvol's instance so it is computed once.
        self._own_rv = rv is None
        self.rv = rv if rv is not None else RealizedVol()

    def update(self, c: Candle) -> None:
        """A closed 1h candle. O(1) unless a refit is due (every `refit_hours` of candle time)."""
        close = c.close
        if self._own_rv:
            self.rv.update(close)
        pc = self._prev_close
        self._prev_close = close
        self.last_ts = now = c.close_ms
        self._gaps.update(c.open_ms)
        if pc is None:
            return
        r = 100.0 * math.log(close / pc)
        self._returns.append(r)
        self._n_returns += 1
        lam = self.cfg.ewma_lambda
        if self._n_returns <= self.cfg.ewma_seed_returns:
            self._seed_sum += r * r
            if self._n_returns == self.cfg.ewma_seed_returns:
                self._ewma = self._seed_sum / self._n_returns
        else:
            self._ewma = lam * self._ewma + (1.0 - lam) * r * r
        if len(self._returns) < self.cfg.window:
            return
        due = self._last_fit_ms is None or now - self._last_fit_ms >= self.cfg.refit_hours * 3_600_000
        if due:
            self._refit(now)
        elif self._model == "garch":
            f = self._fit
            assert f is not None
            e = r - f.mu
            self._sigma2_next = f.omega + f.alpha * e * e + f.beta * self._sigma2_next
        else:
            self._sigma2_next = lam * self._sigma2_next + (1.0 - lam) * r * r

    def _refit(self, now: int) -> None:
        self._last_fit_ms = now
        window = np.fromiter(self._returns, dtype=float, count=len(self._returns))
        try:
            f = self.fitter(window)
            problem = ""
            if not f.converged:
                problem = "optimizer did not converge"
            elif not all(math.isfinite(x) for x in (f.mu, f.omega, f.alpha, f.beta, f.sigma2_last)):
                problem = "non-finite parameter"
            elif f.omega <= 0:
                problem = f"omega {f.omega} <= 0"
            elif f.alpha + f.beta >= self.cfg.max_persistence:
                problem = f"persistence {f.alpha + f.beta:.6f} >= {self.cfg.max_persistence}"
        except Exception as exc:  # any fit failure means the fallback, never an exception upward
            f, problem = None, f"{type(exc).__name__}: {exc}"
        if f is not None and not problem:
            self._fit, self._model, self._fit_error = f, "garch", ""
            e = window[-1] - f.mu
            self._sigma2_next = f.omega + f.alpha * e * e + f.beta * f.sigma2_last
            return
        self._fit, self._model, self._fit_error = None, "ewma", problem
        self._sigma2_next = ewma_variance(window, self.cfg.ewma_lambda, self.cfg.ewma_seed_returns)

    def _evaluate(self, now_ms: int) -> ModuleOutput:
        cfg = self.cfg
        ts = self.last_ts
        rv30 = self.rv.value() if self.rv.ready else math.nan
        values: dict[str, object] = {"model": self._model, "rv30": rv30, "last_fit_ms": self._last_fit_ms,
                                     "returns": self._n_returns}
        if self._model == "none":
            if self._n_returns >= cfg.ewma_min_returns:
                values["ewma_sigma_ann"] = math.sqrt(self._ewma) * ANNUAL
            return ModuleOutput(self.name, ts, Status.WARMUP, None, 1.0, values=values,
                                reason=f"{self._n_returns}/{cfg.window} returns")
        sigma = math.sqrt(self._sigma2_next) * ANNUAL
        values["sigma_1step_ann"] = sigma
        f = self._fit
        status = Status.OK
        reason = ""
        if f is not None:
            persistence = f.alpha + f.beta
            values.update(mu=f.mu, omega=f.omega, alpha=f.alpha, beta=f.beta, persistence=persistence,
                          loglik=f.loglik, sigma_longrun_ann=math.sqrt(f.omega / (1.0 - persistence)) * ANNUAL)
        else:
            status, reason = Status.DEGRADED, f"EWMA fallback: {self._fit_error}"
        if self._gaps.degraded and status is Status.OK:
            status, reason = Status.DEGRADED, "gap of more than max_gap_bars hours in the window"
        spike = bool(rv30 == rv30 and sigma > cfg.spike_factor * rv30)
        values["spike"] = spike
        mult = min(max(cfg.target_vol / sigma, cfg.multiplier_min), cfg.multiplier_max) if sigma > 0 \
            else cfg.multiplier_max
        if now_ms - ts > self.stale_after_ms:
            status = worst(status, Status.STALE)
        if status is not Status.OK:
            mult = min(mult, 1.0)
        return ModuleOutput(self.name, ts, status, None, mult, "spike" if spike else "normal", values=values,
                            reason=reason)

    def _neutral(self, ts: int) -> ModuleOutput:
        return ModuleOutput(self.name, ts, Status.ERROR, None, 1.0)


def ewma_variance(returns: np.ndarray, lam: float, seed_n: int) -> float:
    """σ²_{T+1} of `σ²_{t+1} = λσ²_t + (1−λ)r_t²` over the window, seeded with mean r² of the first seed_n."""
    s2 = float(np.mean(returns[:seed_n] ** 2))
    for r in returns:
        s2 = lam * s2 + (1.0 - lam) * float(r) * float(r)
    return s2
